/**
 * A labelled text input (or textarea) whose error and hint are tied to it with aria-describedby. Inputs are
 * type=text so the browser never rewrites what the user typed; the form's parser reports every problem at its field.
 */
export interface TextFieldProps {
  id: string;
  label: string;
  value: string;
  error?: string | undefined;
  hint?: string;
  multiline?: boolean;
  inputMode?: 'numeric' | 'decimal' | 'text';
  onInput: (value: string) => void;
}

export function TextField({ id, label, value, error, hint, multiline, inputMode = 'text', onInput }: TextFieldProps) {
  const describedBy = [error ? `${id}-error` : '', hint ? `${id}-hint` : ''].filter(Boolean).join(' ') || undefined;
  const common = {
    id,
    value,
    'aria-invalid': error ? ('true' as const) : ('false' as const),
    'aria-describedby': describedBy,
    spellcheck: multiline ? true : false,
  };
  return (
    <div class={error ? 'field invalid' : 'field'}>
      <label for={id}>{label}</label>
      {multiline ? (
        <textarea {...common} rows={3} onInput={(e) => onInput(e.currentTarget.value)} />
      ) : (
        <input {...common} type="text" inputMode={inputMode} autoComplete="off" onInput={(e) => onInput(e.currentTarget.value)} />
      )}
      {hint ? (
        <small id={`${id}-hint`} class="hint">
          {hint}
        </small>
      ) : null}
      {error ? (
        <small id={`${id}-error`} class="error">
          {error}
        </small>
      ) : null}
    </div>
  );
}
