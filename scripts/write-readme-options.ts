// Writes the option reference of `--help` into the README, between its options markers.
import { readFile, writeFile } from 'node:fs/promises';
import { readmeWithOptions } from '../lambda/command-line.js';

const readme = new URL('../README.md', import.meta.url);
await writeFile(readme, readmeWithOptions(await readFile(readme, 'utf8')));
