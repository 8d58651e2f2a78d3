/**
 * The `stratus` command. Each subcommand lives in its own file and registers itself on the
 * program; this file only assembles them and turns thrown errors into a one-line message.
 */
import { Command, CommanderError } from 'commander';
import { packageVersion } from './version.js';
import { registerServe, addServeComponent } from './serve.js';
import { registerController } from './controller.js';
import { registerToken } from './token.js';
import { registerUser } from './user.js';
import { registerLogin } from './login.js';
import { serveUi } from './serve-ui.js';
import { registerS3 } from './s3.js';
import { registerProxy } from './proxy.js';
import { registerPush } from './push.js';
import { registerImage } from './image.js';
import { registerGuest } from './guest.js';
import { registerCorpus } from './corpus.js';

const program = new Command('stratus')
  .description('A declarative control plane for small and mid-sized clouds.')
  .version(packageVersion(), '--version', 'print the version and exit')
  .showHelpAfterError('(run `stratus --help` for usage)')
  .exitOverride();

program
  .command('version')
  .description('print the version of stratus and of the API it serves')
  .action(() => {
    process.stdout.write(`stratus ${packageVersion()} (Kubernetes API v1.32 compatible, node ${process.version})\n`);
  });

// The components of `stratus serve` load when it starts them: the other commands (a token,
// a push, a login) start in a tenth of the time without the controllers, providers and
// legacy APIs.
addServeComponent(async (server, options) => (await import('./serve-controllers.js')).serveControllers(server, options));
addServeComponent(async (server, options) => (await import('./serve-legacy.js')).serveLegacy(server, options));
addServeComponent(async (server, options) => (await import('./serve-login.js')).serveLogin(server, options));
addServeComponent(serveUi);
addServeComponent(async (server, options) => (await import('./serve-s3.js')).serveS3(server, options));
registerServe(program);
registerController(program);
registerToken(program);
registerUser(program);
registerLogin(program);
registerProxy(program);
registerPush(program);
registerImage(program);
registerGuest(program);
registerS3(program);
registerCorpus(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    process.exitCode = err.exitCode;
  } else {
    process.stderr.write(`stratus: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  }
}
