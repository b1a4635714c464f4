/// <reference types="vite/client" />

/** True only in the end-to-end test build (`vite build --mode e2e`): enables the scripted engine. */
declare const __MAGPIE_TEST_BUILD__: boolean;
