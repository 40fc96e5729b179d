/** The `esper` command's public surface. */
export { main, version, type CliIo } from './main.js';
