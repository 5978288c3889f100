//! Interned resources and tag sets as compressed chunks, shared by the SQLite and PostgreSQL
//! history stores.
//!
//! A million-resource estate interns a million resources and (Name tags being unique) nearly a
//! million tag sets. One table row per entry with a unique fingerprint index cost ~450 bytes per
//! resource on disk and a random B-tree insert each. Here entries are appended in runs of up to
//! `CHUNK_ENTRIES`, each run one zstd-compressed row: neighbouring ARNs and tag lists share most
//! of their bytes, so a resource with its tags takes ~30–60 bytes, and a snapshot writes a few
//! hundred rows instead of two million. Entry ids keep the meaning they had as row ids (the
//! 13-byte member references are unchanged): ids only grow, a chunk holds ascending ids, and a
//! chunk's `last_id` stays the highest id it ever held, so the next id (`MAX(last_id) + 1`) is
//! never one handed out before.
//!
//! Fingerprints are not stored: a writer that (re)loads the chunks hashes each entry's bytes,
//! which costs less than reading stored fingerprints would take on disk. They are SHA-256
//! truncated to 128 bits — tag values are chosen by whoever tags a resource, so the hash must not
//! be one an attacker can collide.

use std::io::Read;

use arcstr::ArcStr;
use rustc_hash::{FxHashMap, FxHashSet};
use sha2::{Digest, Sha256};

use crate::history::MemberRecord;

/// Entries per chunk: large enough for zstd to find the repetition between neighbouring ARNs,
/// small enough that reading one resource's row decompresses little.
pub(crate) const CHUNK_ENTRIES: usize = 8192;
/// First byte of a chunk's data: the layout version.
const FORMAT_V1: u8 = 1;
/// zstd level: 3 is zstd's default, ~5× faster than 9 on this data for a few % more bytes.
const LEVEL: i32 = 3;
/// A chunk holds at most `CHUNK_ENTRIES` entries of at most this many bytes each (ARNs are at
/// most 2 KiB, tags 50 × 384 bytes): a larger decompressed chunk is damage, not data.
const MAX_CHUNK_BYTES: u64 = (CHUNK_ENTRIES as u64) * 64 * 1024;

pub(crate) type Fingerprint = [u8; 16];

/// The two chunked dictionaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dictionary {
    Resources,
    TagSets,
}

impl Dictionary {
    pub(crate) const ALL: [Dictionary; 2] = [Dictionary::Resources, Dictionary::TagSets];

    /// The table holding this dictionary's chunks (same name in both backends).
    pub(crate) fn table(self) -> &'static str {
        match self {
            Dictionary::Resources => "resource_chunks",
            Dictionary::TagSets => "tag_set_chunks",
        }
    }
}

/// The canonical bytes of a member's resource row: id, type, region, account and name.
pub(crate) fn resource_entry(m: &MemberRecord, out: &mut Vec<u8>) {
    resource_fields_entry(
        [
            &m.resource_id,
            &m.resource_type,
            &m.region,
            &m.account,
            &m.name,
        ],
        out,
    );
}

/// `resource_entry` from the five fields as stored (id, type, region, account, name).
pub(crate) fn resource_fields_entry(fields: [&str; 5], out: &mut Vec<u8>) {
    out.clear();
    for field in fields {
        put_str(out, field);
    }
}

/// The canonical bytes of a tag set: pairs sorted (equal sets share one entry).
pub(crate) fn tag_set_entry<S: AsRef<str> + Ord + Clone>(tags: &[(S, S)], out: &mut Vec<u8>) {
    out.clear();
    let sorted = super::sorted(tags);
    put_varint(out, sorted.len() as u64);
    for (k, v) in sorted.iter() {
        put_str(out, k.as_ref());
        put_str(out, v.as_ref());
    }
}

pub(crate) fn fingerprint(entry: &[u8]) -> Fingerprint {
    let digest = Sha256::digest(entry);
    let mut fp = [0u8; 16];
    fp.copy_from_slice(&digest[..16]);
    fp
}

/// A resource row as stored: id, type, region, account, name.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ResourceRow {
    pub rid: String,
    pub resource_type: ArcStr,
    pub region: ArcStr,
    pub account: ArcStr,
    pub name: ArcStr,
}

pub(crate) fn decode_resource(entry: &[u8]) -> Result<ResourceRow, String> {
    let mut r = Reader { bytes: entry };
    let row = ResourceRow {
        rid: r.string()?,
        resource_type: r.shared()?,
        region: r.shared()?,
        account: r.shared()?,
        name: r.shared()?,
    };
    r.end()?;
    Ok(row)
}

pub(crate) fn decode_tag_set(entry: &[u8]) -> Result<Vec<(ArcStr, ArcStr)>, String> {
    let mut r = Reader { bytes: entry };
    let n = r.varint()?;
    let mut tags = Vec::with_capacity(n.min(64) as usize);
    for _ in 0..n {
        tags.push((r.shared()?, r.shared()?));
    }
    r.end()?;
    Ok(tags)
}

/// One chunk as stored: its id range and compressed entries.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Chunk {
    pub first_id: u32,
    pub last_id: u32,
    pub data: Vec<u8>,
}

/// Compresses entries with ascending ids into one chunk. `last_id` may be given higher than the
/// last entry's (a rewritten chunk keeps the highest id it ever held).
pub(crate) fn seal(entries: &[(u32, &[u8])], last_id: Option<u32>) -> Result<Chunk, String> {
    let mut raw = Vec::with_capacity(entries.iter().map(|(_, e)| e.len() + 4).sum::<usize>() + 8);
    put_varint(&mut raw, entries.len() as u64);
    let mut previous = 0u32;
    for (i, (id, entry)) in entries.iter().enumerate() {
        if i > 0 && *id <= previous {
            return Err(format!("chunk ids must ascend ({id} after {previous})"));
        }
        put_varint(&mut raw, u64::from(id - if i == 0 { 0 } else { previous }));
        put_varint(&mut raw, entry.len() as u64);
        raw.extend_from_slice(entry);
        previous = *id;
    }
    let mut data = vec![FORMAT_V1];
    data.extend(
        zstd::bulk::compress(&raw, LEVEL).map_err(|e| format!("cannot compress a chunk: {e}"))?,
    );
    let first_id = entries.first().map(|(id, _)| *id).unwrap_or(0);
    let last = entries.last().map(|(id, _)| *id).unwrap_or(0);
    Ok(Chunk {
        first_id,
        last_id: last_id.map_or(last, |l| l.max(last)),
        data,
    })
}

/// Entries with ascending ids compressed into chunks of `CHUNK_ENTRIES`, on two threads when
/// there are several (compression is most of the cost of a first snapshot).
pub(crate) fn seal_all<E: AsRef<[u8]> + Sync>(entries: &[(u32, E)]) -> Result<Vec<Chunk>, String> {
    let runs: Vec<&[(u32, E)]> = entries.chunks(CHUNK_ENTRIES).collect();
    let seal_runs = |runs: &[&[(u32, E)]]| -> Result<Vec<Chunk>, String> {
        runs.iter()
            .map(|run| {
                let refs: Vec<(u32, &[u8])> = run.iter().map(|(id, e)| (*id, e.as_ref())).collect();
                seal(&refs, None)
            })
            .collect()
    };
    if runs.len() < 2 {
        return seal_runs(&runs);
    }
    let (first, second) = crate::util::on_two_halves(runs.len(), |range| seal_runs(&runs[range]));
    let mut all = first?;
    all.extend(second?);
    Ok(all)
}

/// The decompressed entries of one chunk.
pub(crate) struct Opened {
    raw: Vec<u8>,
    /// (id, start, end) into `raw`.
    spans: Vec<(u32, usize, usize)>,
}

impl Opened {
    pub(crate) fn entries(&self) -> impl Iterator<Item = (u32, &[u8])> {
        self.spans
            .iter()
            .map(|&(id, start, end)| (id, &self.raw[start..end]))
    }

    pub(crate) fn len(&self) -> usize {
        self.spans.len()
    }
}

pub(crate) fn open(data: &[u8]) -> Result<Opened, String> {
    let Some((&format, compressed)) = data.split_first() else {
        return Err("an interned chunk is empty".into());
    };
    if format != FORMAT_V1 {
        return Err(format!("an interned chunk has unknown format {format}"));
    }
    let mut raw = Vec::new();
    zstd::stream::read::Decoder::new(compressed)
        .map_err(|e| format!("an interned chunk cannot be read: {e}"))?
        .take(MAX_CHUNK_BYTES)
        .read_to_end(&mut raw)
        .map_err(|e| format!("an interned chunk is damaged: {e}"))?;
    let mut r = Reader { bytes: &raw };
    let n = r.varint()?;
    let mut spans = Vec::with_capacity(n.min(CHUNK_ENTRIES as u64) as usize);
    let mut id = 0u64;
    for _ in 0..n {
        id += r.varint()?;
        let id32 = u32::try_from(id).map_err(|_| "an interned id does not fit 32 bits")?;
        let len = usize::try_from(r.varint()?).map_err(|_| "an entry is too long")?;
        let start = raw.len() - r.bytes.len();
        r.take(len)?;
        spans.push((id32, start, start + len));
    }
    r.end()?;
    Ok(Opened { raw, spans })
}

/// Fingerprint → id of one dictionary's entries, kept by a writer between inserts.
#[derive(Default)]
pub(crate) struct ChunkMap {
    ids: FxHashMap<Fingerprint, u32>,
    /// The highest chunk row id loaded.
    pub max_chunk: i64,
    /// The store's garbage-collection epoch when loaded (a collection invalidates the map).
    pub epoch: i64,
    /// The id the next new entry gets.
    pub next_id: u32,
}

impl ChunkMap {
    /// Forgets everything when the store's garbage-collection epoch moved since the map was
    /// filled (entries it knows may be gone).
    pub(crate) fn follow_epoch(&mut self, epoch: i64) {
        if self.epoch != epoch {
            *self = ChunkMap {
                epoch,
                ..ChunkMap::default()
            };
        }
    }

    pub(crate) fn get(&self, fp: &Fingerprint) -> Option<u32> {
        self.ids.get(fp).copied()
    }

    /// Records the entries of chunk rows `(row id, last_id, data)` read from the store, hashing
    /// them on two threads (a fresh process catching up with a million-entry store).
    pub(crate) fn load_all(&mut self, rows: &[(i64, u32, Vec<u8>)]) -> Result<(), String> {
        if rows.is_empty() {
            // Nothing new since the last insert (the common case): no thread to start.
            return Ok(());
        }
        let hash = |part: &[(i64, u32, Vec<u8>)]| -> Result<Vec<(Fingerprint, u32)>, String> {
            let mut out = Vec::new();
            for (row, _, data) in part {
                let opened = open(data).map_err(|why| format!("row {row}: {why}"))?;
                out.extend(opened.entries().map(|(id, e)| (fingerprint(e), id)));
            }
            Ok(out)
        };
        let (a, b) = crate::util::on_two_halves(rows.len(), |range| hash(&rows[range]));
        let (a, b) = (a?, b?);
        self.ids.reserve(a.len() + b.len());
        self.ids.extend(a);
        self.ids.extend(b);
        for (row, last_id, _) in rows {
            self.max_chunk = self.max_chunk.max(*row);
            self.next_id = self.next_id.max(last_id.saturating_add(1));
        }
        Ok(())
    }

    /// Records entries this writer added (after its transaction committed).
    pub(crate) fn record(&mut self, fp: Fingerprint, id: u32) {
        self.ids.insert(fp, id);
        self.next_id = self.next_id.max(id.saturating_add(1));
    }
}

/// New entries of one snapshot, numbered from the dictionary's next id, to be sealed and stored.
pub(crate) struct Pending {
    next_id: u32,
    /// Fingerprints of entries added by this snapshot (deduplicated within it).
    added: FxHashMap<Fingerprint, u32>,
    /// The new entries not sealed yet: their ids and where their bytes are in `bytes` (one
    /// buffer, not an allocation per entry). At most a chunk's worth: each full run is sealed
    /// at once, so a first snapshot of a million resources holds ~1.6 million new entries
    /// compressed (~5× smaller) rather than raw.
    entries: Vec<(u32, std::ops::Range<usize>)>,
    bytes: Vec<u8>,
    sealed: Vec<Chunk>,
    /// Where full runs go to be sealed on another thread (`intern_members`), tagged with this
    /// dictionary's index; without it they are sealed here.
    sealer: Option<(usize, std::sync::mpsc::SyncSender<(usize, Run)>)>,
}

/// A full run of new entries on its way to be sealed.
pub(crate) struct Run {
    entries: Vec<(u32, std::ops::Range<usize>)>,
    bytes: Vec<u8>,
}

impl Run {
    fn refs(&self) -> Vec<(u32, &[u8])> {
        self.entries
            .iter()
            .map(|(id, span)| (*id, &self.bytes[span.clone()]))
            .collect()
    }

    fn seal(&self) -> Result<Chunk, String> {
        seal(&self.refs(), None)
    }
}

impl Pending {
    pub(crate) fn new(map: &ChunkMap) -> Pending {
        Pending {
            next_id: map.next_id.max(1),
            added: FxHashMap::default(),
            entries: Vec::new(),
            bytes: Vec::new(),
            sealed: Vec::new(),
            sealer: None,
        }
    }

    /// The id of `entry`: an existing one, or a new one.
    pub(crate) fn intern(
        &mut self,
        map: &ChunkMap,
        fp: Fingerprint,
        entry: &[u8],
    ) -> Result<u32, String> {
        if let Some(id) = map.get(&fp).or_else(|| self.added.get(&fp).copied()) {
            return Ok(id);
        }
        let id = self.next_id;
        self.next_id = id
            .checked_add(1)
            .ok_or("interned ids are exhausted (4 billion entries)")?;
        self.added.insert(fp, id);
        let start = self.bytes.len();
        self.bytes.extend_from_slice(entry);
        self.entries.push((id, start..self.bytes.len()));
        if self.entries.len() == CHUNK_ENTRIES {
            let run = Run {
                entries: std::mem::take(&mut self.entries),
                bytes: std::mem::take(&mut self.bytes),
            };
            match &self.sealer {
                Some((dictionary, sealer)) => sealer
                    .send((*dictionary, run))
                    .map_err(|_| "the chunk sealer stopped".to_string())?,
                None => self.sealed.push(run.seal()?),
            }
        }
        Ok(id)
    }

    /// The new entries compressed into chunks (in id order), taken out of this `Pending`.
    pub(crate) fn seal(&mut self) -> Result<Vec<Chunk>, String> {
        let rest = Run {
            entries: std::mem::take(&mut self.entries),
            bytes: std::mem::take(&mut self.bytes),
        };
        let mut chunks = std::mem::take(&mut self.sealed);
        chunks.extend(seal_all(&rest.refs())?);
        Ok(chunks)
    }

    /// Puts the added entries into `map` once their chunks are committed; `last_chunk_row` is
    /// the highest chunk row this writer inserted (the map has seen every row up to it).
    pub(crate) fn commit_into(self, map: &mut ChunkMap, last_chunk_row: Option<i64>) {
        for (fp, id) in self.added {
            map.record(fp, id);
        }
        map.next_id = map.next_id.max(self.next_id);
        if let Some(row) = last_chunk_row {
            map.max_chunk = map.max_chunk.max(row);
        }
    }
}

/// A snapshot's members interned against the resource and tag-set maps: each member's
/// (resource, tag set) ids, and the new entries of each dictionary.
pub(crate) struct Interned {
    pub refs: Vec<[u32; 2]>,
    pub resources: Pending,
    pub tag_sets: Pending,
}

impl Interned {
    /// The new entries of both dictionaries compressed into chunks: [resources, tag sets].
    pub(crate) fn seal(&mut self) -> Result<[Vec<Chunk>; 2], String> {
        Ok([self.resources.seal()?, self.tag_sets.seal()?])
    }

    /// Puts the added entries into the writer's maps once the snapshot is committed;
    /// `last_chunk_rows`: the highest chunk row inserted into each dictionary.
    pub(crate) fn commit_into(self, maps: [&mut ChunkMap; 2], last_chunk_rows: [Option<i64>; 2]) {
        let [resources, tag_sets] = maps;
        self.resources.commit_into(resources, last_chunk_rows[0]);
        self.tag_sets.commit_into(tag_sets, last_chunk_rows[1]);
    }
}

/// Interns the members' resources and tag sets. Fingerprints are computed on two threads
/// (hashing is most of the work); entries are encoded again only for the few that are new.
pub(crate) fn intern_members(
    resources: &ChunkMap,
    tag_sets: &ChunkMap,
    members: &[MemberRecord],
) -> Result<Interned, String> {
    let fingerprints = |part: &[MemberRecord]| -> Vec<[Fingerprint; 2]> {
        let mut buf = Vec::with_capacity(256);
        part.iter()
            .map(|m| {
                resource_entry(m, &mut buf);
                let r = fingerprint(&buf);
                tag_set_entry(&m.tags, &mut buf);
                [r, fingerprint(&buf)]
            })
            .collect()
    };
    let (mut fps, second) =
        crate::util::on_two_halves(members.len(), |range| fingerprints(&members[range]));
    fps.extend(second);
    // Full runs of new entries are compressed on a second thread while this one interns (a
    // first snapshot of a million resources seals ~200 runs); a few runs in flight at most.
    // `out` lives inside the scope, so that even a panic drops the senders and lets the
    // sealer finish (the scope waits for it).
    std::thread::scope(|s| {
        let mut out = Interned {
            refs: Vec::with_capacity(members.len()),
            resources: Pending::new(resources),
            tag_sets: Pending::new(tag_sets),
        };
        let (to_sealer, runs) = std::sync::mpsc::sync_channel::<(usize, Run)>(2);
        let sealer = s.spawn(move || -> Result<[Vec<Chunk>; 2], String> {
            // Each dictionary's runs arrive in id order (the two interleaved).
            let mut sealed = [Vec::new(), Vec::new()];
            for (dictionary, run) in runs {
                sealed[dictionary].push(run.seal()?);
            }
            Ok(sealed)
        });
        out.resources.sealer = Some((0, to_sealer.clone()));
        out.tag_sets.sealer = Some((1, to_sealer));
        let interned = intern_all(&mut out, resources, tag_sets, members, fps);
        // Closing both channels ends the sealer (also when interning failed half way).
        out.resources.sealer = None;
        out.tag_sets.sealer = None;
        let sealed = sealer
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        // A sealing error first: interning then only saw the channel close.
        let [resource_chunks, tag_set_chunks] = sealed?;
        interned?;
        out.resources.sealed = resource_chunks;
        out.tag_sets.sealed = tag_set_chunks;
        Ok(out)
    })
}

fn intern_all(
    out: &mut Interned,
    resources: &ChunkMap,
    tag_sets: &ChunkMap,
    members: &[MemberRecord],
    fps: Vec<[Fingerprint; 2]>,
) -> Result<(), String> {
    let mut buf = Vec::with_capacity(256);
    for (m, [r, t]) in members.iter().zip(fps) {
        let resource = match resources.get(&r) {
            Some(id) => id,
            None => {
                resource_entry(m, &mut buf);
                out.resources.intern(resources, r, &buf)?
            }
        };
        let tag_set = match tag_sets.get(&t) {
            Some(id) => id,
            None => {
                tag_set_entry(&m.tags, &mut buf);
                out.tag_sets.intern(tag_sets, t, &buf)?
            }
        };
        out.refs.push([resource, tag_set]);
    }
    Ok(())
}

/// Ids used by some snapshot, per dictionary, and how a chunk changes under garbage collection.
pub(crate) enum Collected {
    /// Every entry is still used.
    Keep,
    /// No entry is used and the chunk is not the one with the highest ids: delete it.
    /// (Carries the number of entries freed.)
    Delete(usize),
    /// Some entries go: store this instead (same row id, same `last_id`).
    Rewrite(Chunk, usize),
}

/// What garbage collection does with one chunk; `is_last` for the chunk with the highest ids,
/// which is rewritten (possibly empty) but never deleted, so ids are never handed out twice.
pub(crate) fn collect(
    data: &[u8],
    last_id: u32,
    used: &FxHashSet<u32>,
    is_last: bool,
) -> Result<Collected, String> {
    let opened = open(data)?;
    let kept: Vec<(u32, &[u8])> = opened
        .entries()
        .filter(|(id, _)| used.contains(id))
        .collect();
    let freed = opened.len() - kept.len();
    if freed == 0 {
        return Ok(Collected::Keep);
    }
    if kept.is_empty() && !is_last {
        return Ok(Collected::Delete(freed));
    }
    Ok(Collected::Rewrite(seal(&kept, Some(last_id))?, freed))
}

/// Decodes the entries with the given ids out of chunk rows; ids not found are left out.
pub(crate) fn pick<T>(
    chunks: impl IntoIterator<Item = Vec<u8>>,
    wanted: &FxHashMap<u32, u32>,
    decode: impl Fn(&[u8]) -> Result<T, String>,
) -> Result<FxHashMap<u32, T>, String> {
    let mut out = FxHashMap::with_capacity_and_hasher(wanted.len(), Default::default());
    for data in chunks {
        let opened = open(&data)?;
        for (id, entry) in opened.entries() {
            if wanted.contains_key(&id) {
                out.insert(id, decode(entry)?);
            }
        }
    }
    Ok(out)
}

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, String> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = self.bytes.split_first().ok_or("an entry ends early")?;
            self.bytes = rest;
            n |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err("an entry has an over-long number".into())
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], String> {
        if self.bytes.len() < len {
            return Err("an entry ends early".into());
        }
        let (head, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        Ok(head)
    }

    fn string(&mut self) -> Result<String, String> {
        Ok(self.str()?.to_owned())
    }

    fn shared(&mut self) -> Result<ArcStr, String> {
        Ok(ArcStr::from(self.str()?))
    }

    fn str(&mut self) -> Result<&'a str, String> {
        let len = usize::try_from(self.varint()?).map_err(|_| "a string is too long")?;
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes).map_err(|_| "a string is not UTF-8".to_string())
    }

    fn end(&self) -> Result<(), String> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(format!("{} bytes follow an entry", self.bytes.len()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(i: usize) -> MemberRecord {
        MemberRecord {
            resource_id: format!("arn:aws:ec2:eu-west-1:111122223333:instance/i-{i:06}"),
            resource_type: "ec2:instance".into(),
            region: "eu-west-1".into(),
            account: "111122223333".into(),
            name: arcstr::format!("web-{i}"),
            tags: vec![
                ("Name".into(), arcstr::format!("web-{i}")),
                ("Environment".into(), "prod".into()),
            ],
            violations: vec![],
            failing: false,
            in_scope: true,
        }
    }

    #[test]
    fn members_interned_with_runs_sealed_on_a_second_thread_read_back_in_order() {
        let n = CHUNK_ENTRIES * 2 + 17;
        let mut members: Vec<MemberRecord> = (0..n).map(member).collect();
        // Every fourth member repeats a tag set: fewer tag sets than resources.
        for (i, m) in members.iter_mut().enumerate() {
            if i % 4 == 0 {
                m.tags = vec![("Environment".into(), "prod".into())];
            }
        }
        let (rmap, tmap) = (ChunkMap::default(), ChunkMap::default());
        let mut interned = intern_members(&rmap, &tmap, &members).unwrap();
        let resource_chunks = interned.resources.seal().unwrap();
        let tag_set_chunks = interned.tag_sets.seal().unwrap();
        assert_eq!(resource_chunks.len(), 3);
        let opened = |chunks: &[Chunk]| -> Vec<(u32, Vec<u8>)> {
            chunks
                .iter()
                .flat_map(|c| {
                    let o = open(&c.data).unwrap();
                    o.entries()
                        .map(|(id, e)| (id, e.to_vec()))
                        .collect::<Vec<_>>()
                })
                .collect()
        };
        let resources = opened(&resource_chunks);
        let tag_sets = opened(&tag_set_chunks);
        assert_eq!(resources.len(), n);
        assert_eq!(tag_sets.len(), n - n.div_ceil(4) + 1);
        for (i, (m, [r, t])) in members.iter().zip(&interned.refs).enumerate() {
            let (id, entry) = &resources[*r as usize - 1];
            assert_eq!(id, r);
            assert_eq!(
                decode_resource(entry).unwrap().rid,
                m.resource_id,
                "member {i}"
            );
            let (id, entry) = &tag_sets[*t as usize - 1];
            assert_eq!(id, t);
            let mut stored_order = m.tags.clone();
            stored_order.sort();
            assert_eq!(decode_tag_set(entry).unwrap(), stored_order, "member {i}");
        }
    }

    #[test]
    fn entries_round_trip_through_a_chunk() {
        let members: Vec<MemberRecord> = (0..1000).map(member).collect();
        let mut resources = Vec::new();
        let mut tag_sets = Vec::new();
        let mut buf = Vec::new();
        for (i, m) in members.iter().enumerate() {
            resource_entry(m, &mut buf);
            resources.push((i as u32 * 3 + 7, buf.clone()));
            tag_set_entry(&m.tags, &mut buf);
            tag_sets.push((i as u32 + 1, buf.clone()));
        }
        let refs: Vec<(u32, &[u8])> = resources.iter().map(|(i, e)| (*i, e.as_slice())).collect();
        let chunk = seal(&refs, None).unwrap();
        assert_eq!((chunk.first_id, chunk.last_id), (7, 999 * 3 + 7));
        let opened = open(&chunk.data).unwrap();
        let back: Vec<(u32, ResourceRow)> = opened
            .entries()
            .map(|(id, e)| (id, decode_resource(e).unwrap()))
            .collect();
        assert_eq!(back.len(), 1000);
        assert_eq!(back[5].0, 22);
        assert_eq!(back[5].1.rid, members[5].resource_id);
        assert_eq!(back[5].1.name, "web-5");
        // Neighbouring ARNs compress: far below the raw bytes.
        let raw: usize = resources.iter().map(|(_, e)| e.len()).sum();
        assert!(chunk.data.len() * 5 < raw, "{} of {raw}", chunk.data.len());
        // Tag sets are stored sorted: the same set in another order is the same entry.
        let mut a = Vec::new();
        let mut b = Vec::new();
        tag_set_entry(&members[1].tags, &mut a);
        let mut reversed = members[1].tags.clone();
        reversed.reverse();
        tag_set_entry(&reversed, &mut b);
        assert_eq!(a, b);
        let tags = decode_tag_set(&a).unwrap();
        assert_eq!(tags[0].0, "Environment");
    }

    #[test]
    fn out_of_order_ids_and_damage_are_refused() {
        assert!(seal(&[(5, b"a".as_slice()), (5, b"b".as_slice())], None).is_err());
        assert!(open(&[]).is_err());
        assert!(open(&[9, 1, 2]).is_err());
        assert!(open(&[FORMAT_V1, 1, 2, 3]).is_err());
        let chunk = seal(&[(1, b"abc".as_slice())], None).unwrap();
        let mut truncated = chunk.data.clone();
        truncated.truncate(truncated.len() - 2);
        assert!(open(&truncated).is_err());
        assert!(decode_resource(b"\x05ab").is_err());
        assert!(decode_tag_set(b"\x01\x01a").is_err());
    }

    #[test]
    fn pending_numbers_new_entries_once_and_reuses_known_ones() {
        let mut map = ChunkMap::default();
        let mut pending = Pending::new(&map);
        let a = pending.intern(&map, fingerprint(b"a"), b"a").unwrap();
        let b = pending.intern(&map, fingerprint(b"b"), b"b").unwrap();
        assert_eq!(pending.intern(&map, fingerprint(b"a"), b"a").unwrap(), a);
        assert_eq!((a, b), (1, 2));
        let chunks = pending.seal().unwrap();
        assert_eq!(chunks.len(), 1);
        pending.commit_into(&mut map, Some(1));
        let mut next = Pending::new(&map);
        assert_eq!(next.intern(&map, fingerprint(b"b"), b"b").unwrap(), 2);
        assert_eq!(next.intern(&map, fingerprint(b"c"), b"c").unwrap(), 3);
        // A reloaded map agrees.
        let mut reloaded = ChunkMap::default();
        reloaded
            .load_all(&[(1, chunks[0].last_id, chunks[0].data.clone())])
            .unwrap();
        assert_eq!(reloaded.get(&fingerprint(b"b")), Some(2));
        assert_eq!(reloaded.next_id, 3);
    }

    #[test]
    fn many_entries_seal_into_several_chunks_in_id_order() {
        let map = ChunkMap::default();
        let mut pending = Pending::new(&map);
        for i in 0..(CHUNK_ENTRIES * 3 + 5) {
            let e = format!("entry-{i}");
            pending
                .intern(&map, fingerprint(e.as_bytes()), e.as_bytes())
                .unwrap();
        }
        let chunks = pending.seal().unwrap();
        assert_eq!(chunks.len(), 4);
        for w in chunks.windows(2) {
            assert_eq!(w[1].first_id, w[0].last_id + 1);
        }
        assert_eq!(chunks[3].last_id as usize, CHUNK_ENTRIES * 3 + 5);
        // Full runs were sealed as they filled; every entry is in its chunk, in order.
        let mut all = Vec::new();
        for c in &chunks {
            all.extend(
                open(&c.data)
                    .unwrap()
                    .entries()
                    .map(|(id, e)| (id, e.to_vec())),
            );
        }
        assert_eq!(all.len(), CHUNK_ENTRIES * 3 + 5);
        for (n, (id, e)) in all.iter().enumerate() {
            assert_eq!(*id as usize, n + 1);
            assert_eq!(e, format!("entry-{n}").as_bytes());
        }
        assert!(
            pending.seal().unwrap().is_empty(),
            "sealing takes the chunks out"
        );
    }

    #[test]
    fn garbage_collection_keeps_used_entries_and_the_last_chunk() {
        let chunk = seal(&[(1, b"a".as_slice()), (2, b"b"), (3, b"c")], None).unwrap();
        let used: FxHashSet<u32> = [2].into_iter().collect();
        match collect(&chunk.data, 3, &used, false).unwrap() {
            Collected::Rewrite(c, freed) => {
                assert_eq!(freed, 2);
                assert_eq!((c.first_id, c.last_id), (2, 3));
                let ids: Vec<u32> = open(&c.data).unwrap().entries().map(|(i, _)| i).collect();
                assert_eq!(ids, vec![2]);
            }
            _ => panic!("expected a rewrite"),
        }
        let none = FxHashSet::default();
        assert!(matches!(
            collect(&chunk.data, 3, &none, false).unwrap(),
            Collected::Delete(3)
        ));
        assert!(matches!(
            collect(&chunk.data, 3, &none, true).unwrap(),
            Collected::Rewrite(_, 3)
        ));
        let all: FxHashSet<u32> = [1, 2, 3].into_iter().collect();
        assert!(matches!(
            collect(&chunk.data, 3, &all, false).unwrap(),
            Collected::Keep
        ));
    }
}
