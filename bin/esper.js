#!/usr/bin/env node
// Entry point of the `esper` command; the CLI lives in src/cli (compiled to dist/ by `npm ci`).
import { main } from '../dist/cli/main.js';

process.exitCode = await main(process.argv.slice(2));
