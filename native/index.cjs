'use strict';
/* global require, module, __dirname */
// Loads the compiled addon. Throws (with the reason) where it was not built, e.g. where the
// OpenBLAS/LAPACKE headers were missing at install time; the service then runs on TypeScript.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { join } = require('node:path');

// eslint-disable-next-line @typescript-eslint/no-require-imports
module.exports = require(join(__dirname, 'build', 'Release', 'curvature_openblas.node'));
