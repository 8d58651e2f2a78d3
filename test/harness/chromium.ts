/**
 * Debian's Chromium (`/usr/bin/chromium`, `make deps-apt`) driven by playwright-core, for the
 * web console's tests: headless, a new empty profile in a private temp dir, no background
 * traffic (sync, component updates, QUIC), nothing downloaded.
 *
 * TLS: `stratus serve` presents a certificate from its own CA. Rather than ignore certificate
 * errors wholesale, the browser is told to accept exactly the server's public key
 * (`--ignore-certificate-errors-spki-list`, which Chromium honours only with an explicit
 * `--user-data-dir`), so any other certificate would still fail.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { accessSync, constants, readFileSync } from 'node:fs';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { removeDir, tempDir } from './process.js';

export const CHROMIUM = '/usr/bin/chromium';

export interface Browser {
  context: BrowserContext;
  page: Page;
  /** Requests the page made to any other origin than the server's (must stay empty). */
  foreignRequests: string[];
  /** Uncaught errors in the page. */
  pageErrors: string[];
  close(): Promise<void>;
}

/** SHA-256 of the certificate's SubjectPublicKeyInfo, base64, as Chromium's SPKI list wants. */
export function spkiHash(certPem: string): string {
  const key = new X509Certificate(certPem).publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(key).digest('base64');
}

export async function startChromium(options: { origin: string; servingCertFile: string }): Promise<Browser> {
  try {
    accessSync(CHROMIUM, constants.X_OK);
  } catch {
    throw new Error(`${CHROMIUM} is not installed: run \`make deps-apt\` (it installs the chromium package the browser tests use)`);
  }
  const profile = await tempDir('chromium');
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1280, height: 800 },
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        `--ignore-certificate-errors-spki-list=${spkiHash(readFileSync(options.servingCertFile, 'utf8'))}`,
      ],
    });
  } catch (err) {
    await removeDir(profile);
    throw err;
  }
  const page = context.pages()[0] ?? (await context.newPage());
  const foreignRequests: string[] = [];
  const pageErrors: string[] = [];
  context.on('request', (r) => {
    const url = r.url();
    if (!url.startsWith(`${options.origin}/`) && !url.startsWith('data:')) foreignRequests.push(url);
  });
  page.on('pageerror', (e) => pageErrors.push(e.message));
  return {
    context,
    page,
    foreignRequests,
    pageErrors,
    async close() {
      await context.close();
      await removeDir(profile);
    },
  };
}
