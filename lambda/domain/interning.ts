import { DigestMap, DigestSet } from './digest-table.js';
import type { BlobRef, ChildRef, Manifest, Tag } from './inventory.js';
import type { Digest } from './names.js';

// A registry of 100,000 tags holds some 300,000 manifests, and most of what they reference is shared: base
// layers by thousands of images, media types by all of them. Parsed one by one, each manifest carries its own
// copy of every digest and media type string and its own blob objects. The interner makes each distinct
// string, blob reference and empty list one object that every manifest of the inventory points to.

const NONE: readonly never[] = Object.freeze([]);

const DIGEST_LENGTH = 'sha256:'.length + 64;

/**
 * A copy of the string that holds no larger string alive: a substring of a long text (a field of a line of the
 * host inventory's output, say) keeps that whole text in memory for as long as it lives.
 */
export function detached<T extends string>(text: T): T {
  return (text.length < 13 ? text : JSON.parse(JSON.stringify(text))) as T;
}

/** Shares equal strings, blob references and empty lists among the manifests and tags of one inventory. */
export class Interner {
  private readonly strings = new Map<string, string>();
  // Nearly every string of an inventory is a digest, and most of them are seen once: they have tables of
  // their own, a third the size of a Map's.
  private readonly digests = new DigestSet();
  private readonly blobs = new DigestMap<BlobRef>();

  /** The one copy of this string (a digest, a media type, a platform). */
  string<T extends string>(text: T): T {
    if (text.length === DIGEST_LENGTH && text.startsWith('sha256:')) return this.digest(text as Digest) as T;
    const known = this.strings.get(text);
    if (known !== undefined) return known as T;
    // Digests are often built by concatenation (`sha256:` and the hex): kept as they are, each is the pair of
    // parts and the flattened copy, three objects where one would do.
    const copy = detached(text);
    this.strings.set(copy, copy);
    return copy;
  }

  digest(digest: Digest): Digest {
    // Digests are often built by concatenation too.
    return this.digests.intern(digest, detached);
  }

  /** The one reference to this blob: the same digest and size is the same object. */
  blob(blob: BlobRef): BlobRef {
    const known = this.blobs.get(blob.digest);
    if (known !== undefined && known.size === blob.size) return known;
    const shared: BlobRef = { digest: this.digest(blob.digest), size: blob.size };
    if (known === undefined) this.blobs.set(shared.digest, shared);
    return shared;
  }

  private child(child: ChildRef): ChildRef {
    return {
      digest: this.digest(child.digest),
      size: child.size,
      mediaType: this.string(child.mediaType),
      ...(child.platform !== undefined ? { platform: this.string(child.platform) } : {}),
    };
  }

  /** The manifest with its strings, blobs and empty lists shared; optional fields stay absent when unset. */
  manifest(manifest: Manifest): Manifest {
    const { size, kind, subject, artifactType, created, pushedAt } = manifest;
    const digest = this.digest(manifest.digest);
    const mediaType = this.string(manifest.mediaType);
    const config = manifest.config && {
      digest: this.digest(manifest.config.digest),
      size: manifest.config.size,
      mediaType: this.string(manifest.config.mediaType),
    };
    const layers = manifest.layers.length === 0 ? NONE : manifest.layers.map((layer) => this.blob(layer));
    const children =
      manifest.children.length === 0 ? NONE : manifest.children.map((child) => this.child(child));
    // The usual shapes (an image or an index, pushed at a known time) as plain literals: an object built by
    // spreading optional fields is a quarter larger.
    if (
      subject === undefined &&
      artifactType === undefined &&
      created === undefined &&
      pushedAt !== undefined
    ) {
      return config
        ? { digest, mediaType, size, kind, config, layers, children, pushedAt }
        : { digest, mediaType, size, kind, layers, children, pushedAt };
    }
    return {
      digest,
      mediaType,
      size,
      kind,
      ...(config ? { config } : {}),
      layers,
      children,
      ...(subject !== undefined ? { subject: this.digest(subject) } : {}),
      ...(artifactType !== undefined ? { artifactType: this.string(artifactType) } : {}),
      ...(created !== undefined ? { created } : {}),
      ...(pushedAt !== undefined ? { pushedAt } : {}),
    };
  }

  /** The tag with its digest shared, its name detached from the text it was read from. */
  tag(tag: Tag): Tag {
    return {
      name: detached(tag.name),
      digest: this.digest(tag.digest),
      ...(tag.pushedAt !== undefined ? { pushedAt: tag.pushedAt } : {}),
    };
  }
}
