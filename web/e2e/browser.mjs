// The browser the map wall's checks drive: Debian's Chromium, headless, launched as a wall
// kiosk without a GPU would be. WebGL renders in software (SwiftShader); the page itself is
// composited in software too (--disable-gpu-compositing), which spares the software GPU
// process a second GL context at start-up: the first render comes about a third sooner.
//
// Environment: CHROMIUM (the browser, default /usr/bin/chromium).

import { chromium } from 'playwright-core';

/** Chromium's flags for a wall machine without a GPU, headless, with no network beyond us. */
export const WALL_FLAGS = [
  '--no-sandbox',
  '--use-angle=swiftshader',
  '--enable-unsafe-swiftshader',
  '--disable-gpu-compositing',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

/** Starts the browser. */
export function launchBrowser() {
  return chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', args: WALL_FLAGS });
}
