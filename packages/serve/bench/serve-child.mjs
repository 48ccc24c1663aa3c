/* global process */
// The service under load, in its own process (as `cr serve` runs it), so the load generator does
// not share its event loop. Prints the URL on stdout; SIGTERM drains and exits.
import { Sandbox } from '@codereasoner/sandbox';
import { TaskStore, createVerificationServer } from '@codereasoner/serve';

const [tasksPath, workers, maxConcurrent] = process.argv.slice(2);
const sandbox = await Sandbox.create({ workers: Number(workers) });
const server = createVerificationServer({
  sandbox,
  tasks: await TaskStore.load([tasksPath]),
  options: { host: '127.0.0.1', port: 0, maxConcurrent: Number(maxConcurrent) },
});
const { url } = await server.listen();
process.stdout.write(`${url}\n`);
process.on('SIGTERM', async () => {
  await server.close();
  await sandbox.close();
  process.exit(0);
});
