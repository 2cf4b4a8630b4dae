// # Recordings
//
// A recording (extension .rpz, specified in FORMAT.md next to this file)
// is a file header followed by independent blocks, each a zstd frame of
// records (metadata, exchanges, timelines) framed by a sync marker, its
// lengths and CRC-32C checksums, and at the end a trailer index and a
// footer. Write one with NewWriter or Create (which can rotate by size or
// time); read one with NewReader, or several merged in time order with
// Open. Copy moves exchanges from any Source to any Sink.
//
// # One rule each
//
// Rules that capture, inspection, check and replay all apply live here
// once, so that they cannot give different answers: Route (per-route
// names), DecodeBody (Content-Encoding, bounded), ExpandGlobs (file
// arguments), SessionKeys (where a replay's sessions come from, with
// WithoutSessions to drop recorded ones), Dist and Summarize (figures of
// a distribution), SliceSource (exchanges in memory as a Source), and
// HeapPush and HeapPop (the typed min-heap of the loops that put
// exchanges, packets or pending requests in time order).
//
// # Damage
//
// A recording is read block by block, and every block is checked before
// any of its records is used. When a block is damaged (a checksum fails, a
// length is impossible, the file is cut short or has junk in it) the
// Reader:
//
//  1. has already returned every record of every good block before it;
//  2. searches forward for the next sync marker whose block header checks
//     out, skipping the damaged bytes;
//  3. returns one *CorruptError naming the file, the byte offset where the
//     damage starts, the bytes skipped and the records lost (when the
//     damaged headers were readable), wrapping ErrChecksum, ErrBadBlock,
//     ErrBadRecord or ErrTruncated;
//  4. continues with the records of the good block it found, if Next is
//     called again, and returns io.EOF at the end.
//
// So a consumer that treats any error as the end gets every record before
// the damage, and one that continues past *CorruptError gets every good
// record in the file. Reader.Damage and Reader.Stats (and the MultiReader
// equivalents) list and count everything skipped. A file that ends without
// its footer, because its writer was killed or is still writing, reports a
// CorruptError wrapping ErrTruncated at its end: with the live flush
// interval (FlushInterval) that loses at most the last interval of
// traffic. A header that is not a recording's (ErrNotRecording) or has an
// unknown major version (*VersionError) is refused outright.
//
// Every length read from a file is checked against MaxBlockSize and the
// bytes that remain before anything is allocated, so a forged length
// cannot make a reader allocate without bound.
package session
