//! Writing features into Mapbox Vector Tile 2.1 layers with the `mvt` crate.
//!
//! Geometry arrives already clipped, snapped and valid ([`super::clip`]); this module only
//! turns it into MVT commands and tags. One quirk of the encoder is worked around here: it
//! merges a ring's first point into the previous ring when they coincide (rings touching at a
//! vertex), which would leave the ring without its MoveTo, so such a ring is started one
//! vertex later. Ring orientation is set here too (exteriors positive, holes negative, as MVT
//! 2.1 wants), since the overlay does not always hand holes back reversed.

use i_overlay::i_float::int::point::IntPoint;
use i_overlay::i_shape::int::shape::IntShapes;
use mvt::{GeomEncoder, GeomType, Tile};
use thiserror::Error;

use super::clip::doubled_area;

/// A failure to encode a tile (a bug or an impossible geometry, never bad user input).
#[derive(Debug, Error)]
#[error("cannot encode the tile: {0}")]
pub struct EncodeError(#[from] mvt::Error);

/// A property value of a feature.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Prop<'a> {
    /// A string.
    Str(&'a str),
    /// A signed integer.
    Int(i64),
    /// A floating-point number.
    Double(f64),
    /// A boolean.
    Bool(bool),
}

/// One layer being filled.
pub struct LayerBuilder {
    layer: Option<mvt::Layer>,
}

fn tag(feature: &mut mvt::Feature, key: &str, value: Prop<'_>) {
    match value {
        Prop::Str(s) => feature.add_tag_string(key, s),
        Prop::Int(i) => feature.add_tag_sint(key, i),
        Prop::Double(d) => feature.add_tag_double(key, d),
        Prop::Bool(b) => feature.add_tag_bool(key, b),
    }
}

impl LayerBuilder {
    /// An empty layer named `name` for `tile`.
    pub fn new(tile: &Tile, name: &str) -> Self {
        Self {
            layer: Some(tile.create_layer(name)),
        }
    }

    fn add(
        &mut self,
        geometry: mvt::GeomData,
        id: u64,
        props: &[(&str, Prop<'_>)],
    ) -> Result<(), EncodeError> {
        let Some(layer) = self.layer.take() else {
            return Ok(());
        };
        let mut feature = layer.into_feature(geometry);
        feature.set_id(id);
        for (k, v) in props {
            tag(&mut feature, k, *v);
        }
        self.layer = Some(feature.into_layer());
        Ok(())
    }

    /// Adds a polygon feature from valid shapes (each an exterior ring followed by its holes).
    /// Shapes with nothing left are skipped.
    pub fn polygon(
        &mut self,
        id: u64,
        shapes: &IntShapes,
        props: &[(&str, Prop<'_>)],
    ) -> Result<(), EncodeError> {
        let mut enc = GeomEncoder::<i32>::new(GeomType::Polygon);
        let mut last: Option<IntPoint> = None;
        let mut rings = 0;
        for shape in shapes {
            for (i, ring) in shape.iter().enumerate() {
                let area = doubled_area(ring);
                if ring.len() < 3 || area == 0 {
                    continue;
                }
                // Exterior rings positive, holes negative, whatever order the overlay gave.
                let reverse = (i == 0) != (area > 0);
                let n = ring.len();
                let at = |k: usize| if reverse { ring[n - 1 - k] } else { ring[k] };
                let start = usize::from(last == Some(at(0)));
                for k in 0..n {
                    let p = at((start + k) % n);
                    enc.add_point(p.x, p.y)?;
                }
                last = Some(at((start + n - 1) % n));
                enc.complete_geom()?;
                rings += 1;
            }
        }
        if rings == 0 {
            return Ok(());
        }
        self.add(enc.encode()?, id, props)
    }

    /// Adds a point feature at tile coordinates `p`.
    pub fn point(
        &mut self,
        id: u64,
        p: [i32; 2],
        props: &[(&str, Prop<'_>)],
    ) -> Result<(), EncodeError> {
        let enc = GeomEncoder::<i32>::new(GeomType::Point).point(p[0], p[1])?;
        self.add(enc.encode()?, id, props)
    }

    /// How many features the layer holds.
    pub fn len(&self) -> usize {
        self.layer.as_ref().map_or(0, mvt::Layer::num_features)
    }

    /// Whether the layer holds no feature.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds the layer to `tile` if it holds any feature.
    pub fn finish(self, tile: &mut Tile) -> Result<(), EncodeError> {
        match self.layer {
            Some(layer) if layer.num_features() > 0 => Ok(tile.add_layer(layer)?),
            _ => Ok(()),
        }
    }
}

/// The encoded tile, or no bytes at all when it has no layer (served as 204).
pub fn tile_bytes(tile: &Tile) -> Result<Vec<u8>, EncodeError> {
    if tile.num_layers() == 0 {
        return Ok(Vec::new());
    }
    Ok(tile.to_bytes()?)
}
