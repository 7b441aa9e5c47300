/** The storage the scan was given cannot be used: bad input, and the message says what to fix. */
export class StorageRootError extends Error {
  override readonly name = 'StorageRootError';
  readonly code = 'RJ_STORAGE_ROOT';
}
