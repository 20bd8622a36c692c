// Text to a file without a buffer per write (manifests).
import type { FileHandle } from 'node:fs/promises';

/**
 * Text written to a file through one reused 1 MiB buffer: encoded into it, written when full and on flush.
 * Writing each MiB as a string made a new buffer every time, which lived until the next collection: a
 * million-file manifest held 25-35 MB more at its end than the run before it.
 */
export class BufferedWriter {
  private static readonly BYTES = 1024 * 1024;
  private readonly file: FileHandle;
  private readonly buffer = Buffer.allocUnsafeSlow(BufferedWriter.BYTES);
  private used = 0;

  constructor(file: FileHandle) {
    this.file = file;
  }

  async write(text: string): Promise<void> {
    // A UTF-16 unit takes at most 3 bytes in UTF-8: room for that is room enough.
    if (this.used + 3 * text.length > BufferedWriter.BYTES) await this.flush();
    if (3 * text.length > BufferedWriter.BYTES) await this.writeAll(Buffer.from(text));
    else this.used += this.buffer.write(text, this.used);
  }

  async flush(): Promise<void> {
    const used = this.used;
    this.used = 0;
    if (used > 0) await this.writeAll(this.buffer.subarray(0, used));
  }

  private async writeAll(bytes: Buffer): Promise<void> {
    for (let done = 0; done < bytes.length; ) done += (await this.file.write(bytes, done, bytes.length - done)).bytesWritten;
  }
}
