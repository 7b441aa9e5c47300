#!/usr/bin/env node
// The command line straight from the TypeScript sources, through tsx: what the tests, the demo and the
// benchmarks run, so they never need a build. The package runs the bundle in dist/ instead.
import { register } from 'tsx/esm/api';

register();
await import('../lambda/main.ts');
