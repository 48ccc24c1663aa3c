#!/usr/bin/env node
console.error('cr: commands are being built; see issue 8.');
process.exitCode = 1;
