//! The tile cache: encoded tiles kept in memory, already compressed, keyed by tile set, address,
//! filters and data version.
//!
//! A tile is rendered once however many requests ask for it at the same moment (the others
//! wait for the first), compressed with gzip at once (every browser asks for it), and with
//! brotli the first time a client prefers that. Changing data bumps the tile set's version, so
//! stale entries are simply never asked for again and age out under the size bound.

use std::hash::{BuildHasher, Hasher};
use std::io::Write;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use foldhash::fast::FixedState;
use moka::future::Cache;

use super::layer::{TileError, TileFilter, TileSet};
use super::tile_id::TileId;

/// What identifies one cached tile.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct TileKey {
    set: Arc<str>,
    tile: TileId,
    filter: Arc<str>,
    version: u64,
}

/// One encoded tile with its compressed forms.
#[derive(Debug)]
pub struct EncodedTile {
    raw: Bytes,
    gzip: Bytes,
    brotli: OnceLock<Bytes>,
    etag: String,
}

/// How a response body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// As is.
    Identity,
    /// gzip.
    Gzip,
    /// brotli.
    Brotli,
}

fn gzip(raw: &[u8]) -> Bytes {
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(raw.len() / 2),
        flate2::Compression::new(6),
    );
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(raw);
    enc.finish().map(Bytes::from).unwrap_or_default()
}

fn brotli(raw: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(raw.len() / 2);
    let params = brotli::enc::BrotliEncoderParams {
        quality: 6,
        ..Default::default()
    };
    let mut input = raw;
    match brotli::BrotliCompress(&mut input, &mut out, &params) {
        Ok(_) => Bytes::from(out),
        Err(_) => Bytes::new(),
    }
}

impl EncodedTile {
    /// Wraps freshly rendered bytes: computes the validator and the gzip form.
    pub fn new(raw: Vec<u8>, version: u64) -> Self {
        let mut h = FixedState::with_seed(0x51_7cc1_b727_220a).build_hasher();
        h.write(&raw);
        let etag = format!("W/\"{version:x}-{:016x}\"", h.finish());
        let gzip = if raw.is_empty() {
            Bytes::new()
        } else {
            gzip(&raw)
        };
        Self {
            raw: Bytes::from(raw),
            gzip,
            brotli: OnceLock::new(),
            etag,
        }
    }

    /// Whether no feature touches the tile.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// The entity tag (weak: the same for every content encoding).
    pub fn etag(&self) -> &str {
        &self.etag
    }

    /// The uncompressed tile.
    pub fn raw(&self) -> &Bytes {
        &self.raw
    }

    /// The body in `encoding` (brotli is computed on first use, so call that off the async
    /// runtime's threads).
    pub fn body(&self, encoding: Encoding) -> Bytes {
        match encoding {
            Encoding::Identity => self.raw.clone(),
            Encoding::Gzip => self.gzip.clone(),
            Encoding::Brotli => self.brotli.get_or_init(|| brotli(&self.raw)).clone(),
        }
    }

    /// Whether the brotli form exists yet.
    pub fn has_brotli(&self) -> bool {
        self.brotli.get().is_some()
    }

    fn weight(&self) -> u32 {
        let b = self.brotli.get().map_or(0, Bytes::len);
        (256 + self.raw.len() + self.gzip.len() + b).min(u32::MAX as usize) as u32
    }
}

/// The shared tile cache.
#[derive(Clone)]
pub struct TileCache {
    inner: Cache<TileKey, Arc<EncodedTile>>,
}

impl TileCache {
    /// A cache holding at most about `max_bytes` of tiles.
    pub fn new(max_bytes: u64) -> Self {
        Self {
            inner: Cache::builder()
                .max_capacity(max_bytes)
                .weigher(|_k: &TileKey, v: &Arc<EncodedTile>| v.weight())
                .build(),
        }
    }

    /// The tile from the cache, or rendered (on a blocking thread, once for all concurrent
    /// askers) and cached.
    pub async fn get(
        &self,
        set: Arc<dyn TileSet>,
        tile: TileId,
        filter: TileFilter,
    ) -> Result<Arc<EncodedTile>, Arc<TileError>> {
        let version = set.version();
        let key = TileKey {
            set: Arc::from(set.name()),
            tile,
            filter: if set.takes_filters() {
                Arc::from(filter.cache_key(chrono::Utc::now()))
            } else {
                Arc::from("")
            },
            version,
        };
        self.inner
            .try_get_with(key, async move {
                tokio::task::spawn_blocking(move || {
                    set.render(tile, &filter)
                        .map(|raw| Arc::new(EncodedTile::new(raw, version)))
                })
                .await
                .map_err(|e| TileError::Data(format!("the rendering task failed: {e}")))?
            })
            .await
    }

    /// How many tiles and bytes are cached (approximately).
    pub fn usage(&self) -> (u64, u64) {
        (self.inner.entry_count(), self.inner.weighted_size())
    }
}

/// The best encoding the client accepts, from an `Accept-Encoding` value: brotli, then gzip,
/// then none; `q=0` refuses a coding.
pub fn negotiate(accept_encoding: Option<&str>) -> Encoding {
    let Some(value) = accept_encoding else {
        return Encoding::Identity;
    };
    let (mut br, mut gz) = (false, false);
    for item in value.split(',') {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let refused = parts.any(|p| {
            let p = p.trim();
            p.strip_prefix("q=")
                .and_then(|q| q.trim().parse::<f32>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        if refused {
            continue;
        }
        match coding.as_str() {
            "br" => br = true,
            "gzip" | "x-gzip" => gz = true,
            "*" => {
                br = true;
                gz = true;
            }
            _ => {}
        }
    }
    if br {
        Encoding::Brotli
    } else if gz {
        Encoding::Gzip
    } else {
        Encoding::Identity
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn negotiates_like_browsers_expect() {
        assert_eq!(negotiate(None), Encoding::Identity);
        assert_eq!(negotiate(Some("gzip, deflate, br, zstd")), Encoding::Brotli);
        assert_eq!(negotiate(Some("gzip")), Encoding::Gzip);
        assert_eq!(negotiate(Some("br;q=0, gzip;q=0.5")), Encoding::Gzip);
        assert_eq!(negotiate(Some("identity")), Encoding::Identity);
        assert_eq!(negotiate(Some("*")), Encoding::Brotli);
    }

    #[test]
    fn compressed_forms_decompress_to_the_tile() {
        let raw: Vec<u8> = (0..10_000u32).map(|i| (i % 7) as u8).collect();
        let t = EncodedTile::new(raw.clone(), 3);
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&t.body(Encoding::Gzip)[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, raw);
        let mut back = Vec::new();
        brotli::BrotliDecompress(&mut &t.body(Encoding::Brotli)[..], &mut back).unwrap();
        assert_eq!(back, raw);
        assert!(t.etag().starts_with("W/\"3-"));
    }
}
