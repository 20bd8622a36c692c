// Bearer-token check in constant time: both sides are hashed to equal-length digests before comparing,
// so neither the token's length nor a matching prefix shows in the timing.
import { createHash, timingSafeEqual } from 'node:crypto';

export const MIN_TOKEN_LENGTH = 16;

export function tokenDigest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** True when `authorization` is `Bearer <token>` for the expected token digest. */
export function bearerMatches(authorization: string | undefined, expected: Buffer): boolean {
  const presented = /^Bearer +(.+)$/i.exec(authorization ?? '')?.[1]?.trim() ?? '';
  // Hash even when absent so a missing header costs the same as a wrong one.
  const digest = tokenDigest(presented);
  return timingSafeEqual(digest, expected) && presented.length > 0;
}
