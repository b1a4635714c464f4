// Run before the browser tests: make sure a system Chromium exists, installing Debian's package when we are root.
import { execSync } from 'node:child_process';
import { findChromium } from './chromium-path.mjs';

let path = findChromium();
if (!path) {
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const hasApt = (() => {
    try {
      execSync('command -v apt-get', { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  })();
  if (isRoot && hasApt) {
    console.log('[ensure-chromium] No Chromium found: installing Debian\'s chromium package (apt-get)…');
    execSync('apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium', {
      stdio: 'inherit',
      shell: '/bin/bash',
    });
    path = findChromium();
  }
}
if (!path) {
  console.error(
    '[ensure-chromium] No Chromium/Chrome found. Install one (Debian/Ubuntu: `sudo apt-get install chromium`),\n' +
      'or set CHROMIUM_PATH to a Chrome or Chromium executable, then run `npm test` again.',
  );
  process.exit(1);
}
console.log(`[ensure-chromium] using ${path}`);
