# Container image of the curvature service.
#
#   docker build -t curvature-service .
#   docker run --rm -p 3000:3000 curvature-service
#
# Node 24 (LTS) on Debian 12 (bookworm): the Node CI tests with (scripts/container/versions.sh),
# and bookworm's OpenBLAS/LAPACKE, which the project's machines build and test against. Where
# Docker Hub does not answer, scripts/container/base-image.sh makes node:24-bookworm-slim locally
# (debootstrap, Node and npm from the npm registry); test/deploy/container.test.ts builds this
# file on it and runs the image (`npm run test:container`, a step of .ci/run).

# ---- production dependencies only, with the native addon compiled in place ----
FROM node:24-bookworm-slim AS prod-deps
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ libopenblas-dev liblapacke-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# The image promises the OpenBLAS backend: a failed addon build fails the image build instead of
# falling back to the TypeScript kernels (CURVATURE_OPENBLAS_REQUIRED, native/build.mjs). The
# addon is built by its own script, not by npm: npm 11 runs a dependency's install script only
# where package.json's allowScripts covers it, forgives a failed optional dependency, and no
# other production dependency needs a script, so `--ignore-scripts` runs none of theirs. The
# load check proves the result.
ENV CURVATURE_OPENBLAS_REQUIRED=1
COPY package.json package-lock.json ./
COPY native/ ./native/
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && node native/build.mjs \
 && node -e "console.log(require('curvature-openblas').config())"

# ---- compile TypeScript to dist/: dev dependencies, no install scripts (tsc needs no addon) ----
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
COPY native/ ./native/
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src/ ./src/
COPY routes/ ./routes/
COPY schemas/ ./schemas/
RUN npm run build

# ---- runtime: Node, the OpenBLAS/LAPACKE shared libraries, tini; no compiler, no dev deps ----
FROM node:24-bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends libopenblas0 liblapacke tini \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# CURVATURE_LINALG=openblas: refuse to start without the addon rather than run 50x slower.
# MALLOC_MMAP_THRESHOLD_: glibc maps blocks over 4 MiB (chunks, answers) and unmaps them when
# freed, instead of keeping them in its arenas: RSS comes back after a burst of large answers.
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    CURVATURE_LINALG=openblas \
    MALLOC_MMAP_THRESHOLD_=4194304
COPY package.json ./
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=prod-deps /app/native ./native
COPY --from=build /app/dist ./dist
# Files stay root-owned and read-only to the service: it writes nothing to disk, so the image also
# runs with a read-only root filesystem. 1000 is the `node` user of the official image; numeric so
# that Kubernetes' runAsNonRoot can verify it.
USER 1000:1000
EXPOSE 3000
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/health', { signal: AbortSignal.timeout(4000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# tini is PID 1: it forwards SIGTERM to Node (graceful shutdown) and reaps zombies.
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "dist/src/server.js"]
