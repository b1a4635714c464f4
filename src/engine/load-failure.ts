/**
 * WebLLM reports a bad model file as a bare JavaScript error: a WebAssembly CompileError for a model library that is
 * not one, a JSON SyntaxError for a config that is really a web page (WebLLM reads a localhost URL without checking
 * the status). This names the file to check, so the page can tell the user which URL is wrong.
 */
import type { CustomModelRecord } from './worker-api';

/** The error name the classifier maps to the 'model-files' kind. */
export const MODEL_FILE_ERROR = 'ModelFileError';

// The bytes WebAssembly found where "\0asm" should be: "<!" / "<h" / "<H" / "<?" start an HTML or XML page.
const HTML_INSTEAD_OF_WASM = /found 3c (21|68|48|3f)\b/i;
// JSON.parse on an HTML page fails on its first "<".
const HTML_INSTEAD_OF_JSON = /Unexpected token '<'|<!doctype|<html/i;

function modelFileError(message: string): Error {
  const e = new Error(message);
  e.name = MODEL_FILE_ERROR;
  return e;
}

/** The error to report for a failed load: a ModelFileError naming the file when it is a bad file, else `err`. */
export function explainLoadFailure(err: unknown, modelId: string, custom?: CustomModelRecord): unknown {
  if (!(err instanceof Error)) return err;
  if (err.name === 'CompileError' || err.name === 'LinkError') {
    const lib = custom ? `The model library ${custom.model_lib}` : `The model library of ${modelId}`;
    const page = HTML_INSTEAD_OF_WASM.test(err.message) ? ' The server sent a web page instead of a .wasm file: check the URL.' : '';
    return modelFileError(`${lib} is not a WebLLM model library (${err.message}).${page}`);
  }
  if (err.name === 'SyntaxError' && /JSON/.test(err.message)) {
    const where = custom ? `under ${custom.model}` : `of ${modelId}`;
    const page = HTML_INSTEAD_OF_JSON.test(err.message) ? ' The server sent a web page instead: check the weights URL.' : '';
    return modelFileError(
      `A model file ${where} (mlc-chat-config.json or tensor-cache.json) is not valid JSON (${err.message}).${page}`,
    );
  }
  return err;
}
