import { run } from './cli.js';

// The command's process entry: the bundle and the single executable start here.
// The AWS SDK in the bundle is fixed at build time; its warning that later releases will need Node 22 is
// for whoever picks SDK versions, not for someone running the command on Node 20.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

run(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  stdin: process.stdin,
  env: process.env,
}).then((code) => {
  process.exitCode = code;
});
