/**
 * The glibc mmap threshold the image runs the service with (README, Configuration): the
 * Dockerfile's ENV MALLOC_MMAP_THRESHOLD_, checked on the built image by
 * test/deploy/container.test.ts. The heavy tests and the bench start the service with it too.
 */
export const SERVICE_MALLOC_MMAP_THRESHOLD = '4194304';
