'use strict';
// Loads the compiled addon. Throws (with the reason) where it was not built, e.g. where the
// OpenBLAS/LAPACKE headers were missing at install time; the service then runs on TypeScript.
const { join } = require('node:path');

module.exports = require(join(__dirname, 'build', 'Release', 'curvature_openblas.node'));
