//! The similarity heatmap of one loosh round, as Loosh's dashboard shows it: the cosine of
//! every pair among the prompt and the answers, from the *recorded* embeddings (integer dot
//! products, so every reader of the log draws the same picture). SVG carries labels and
//! values; PNG is the bare matrix, one square per pair.

use std::fmt::Write as _;
use std::io;
use std::path::Path;

use weightlog_replay::projection::loosh_evaluate::PROMPT_EMBEDDING_UID;
use weightlog_schema::Payload;

use crate::embed::quantize;
use crate::log::{LogError, LogReader};

/// Pixels per cell in the PNG.
const PNG_CELL_PIXELS: u32 = 24;
/// Pixels per cell in the SVG.
const SVG_CELL_PIXELS: u32 = 48;
/// The largest round drawn (rows and columns).
pub const ROWS_MAX: usize = 512;

#[derive(Debug, thiserror::Error)]
pub enum HeatmapError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("challenge `{0}` has no recorded embeddings in this log")]
    NoEmbeddings(String),
    #[error("challenge `{challenge}` has {rows} embeddings; at most {ROWS_MAX} are drawn")]
    TooLarge { challenge: String, rows: usize },
    #[error(
        "challenge `{challenge}`: embedding of uid {uid} has {got} dimensions, the round's first has {expected}"
    )]
    Dimension {
        challenge: String,
        uid: u16,
        got: usize,
        expected: usize,
    },
    #[error("{path}: the output must end in .svg or .png")]
    Format { path: String },
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
}

/// The round's labels (`prompt`, `uid N`) and its cosine matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct Heatmap {
    pub challenge_id: String,
    pub labels: Vec<String>,
    pub cosines: Vec<Vec<f64>>,
}

/// The matrix of a challenge from a log: its embeddings in log order, the prompt first.
pub fn from_log(reader: &LogReader, challenge_id: &str) -> Result<Heatmap, HeatmapError> {
    let snapshot = reader.snapshot()?;
    let mut rows: Vec<(u16, Vec<i8>)> = Vec::new();
    for seq in snapshot.seqs_by_challenge(challenge_id)? {
        if let Payload::EmbeddingComputed(embedding) = snapshot.event(seq)?.payload {
            if let Some((_, first)) = rows.first()
                && first.len() != embedding.vector.len()
            {
                return Err(HeatmapError::Dimension {
                    challenge: challenge_id.to_owned(),
                    uid: embedding.uid,
                    got: embedding.vector.len(),
                    expected: first.len(),
                });
            }
            rows.push((embedding.uid, embedding.vector));
        }
    }
    if rows.is_empty() {
        return Err(HeatmapError::NoEmbeddings(challenge_id.to_owned()));
    }
    if rows.len() > ROWS_MAX {
        return Err(HeatmapError::TooLarge {
            challenge: challenge_id.to_owned(),
            rows: rows.len(),
        });
    }
    // The prompt first, then the answers in the order they were embedded.
    rows.sort_by_key(|(uid, _)| *uid != PROMPT_EMBEDDING_UID);
    let labels = rows
        .iter()
        .map(|(uid, _)| match *uid {
            PROMPT_EMBEDDING_UID => "prompt".to_owned(),
            uid => format!("uid {uid}"),
        })
        .collect();
    let cosines = rows
        .iter()
        .map(|(_, a)| rows.iter().map(|(_, b)| quantize::cosine(a, b)).collect())
        .collect();
    Ok(Heatmap {
        challenge_id: challenge_id.to_owned(),
        labels,
        cosines,
    })
}

/// A colour for a cosine in [-1, 1]: dark blue (low) through teal to yellow (high), a
/// perceptually ordered ramp like viridis, interpolated between five stops.
fn colour(cosine: f64) -> [u8; 3] {
    const STOPS: [[f64; 3]; 5] = [
        [68.0, 1.0, 84.0],
        [59.0, 82.0, 139.0],
        [33.0, 145.0, 140.0],
        [94.0, 201.0, 98.0],
        [253.0, 231.0, 37.0],
    ];
    // Answers to one prompt rarely fall below 0; spread [0, 1] over the ramp.
    let t = cosine.clamp(0.0, 1.0) * (STOPS.len() - 1) as f64;
    let index = (t.floor() as usize).min(STOPS.len() - 2);
    let fraction = t - index as f64;
    let mut rgb = [0u8; 3];
    for (channel, value) in rgb.iter_mut().enumerate() {
        let low = STOPS[index][channel];
        let high = STOPS[index + 1][channel];
        *value = (low + (high - low) * fraction).round() as u8;
    }
    rgb
}

impl Heatmap {
    pub fn to_svg(&self) -> String {
        let rows = self.labels.len() as u32;
        let margin = 90;
        let side = margin + rows * SVG_CELL_PIXELS + 10;
        let mut svg = String::new();
        let _ = writeln!(
            svg,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{side}\" height=\"{}\" \
             font-family=\"sans-serif\" font-size=\"11\">",
            side + 20
        );
        let _ = writeln!(
            svg,
            "<title>cosine similarity, challenge {}</title>",
            escape(&self.challenge_id)
        );
        let _ = writeln!(
            svg,
            "<text x=\"4\" y=\"14\" font-size=\"13\">challenge {} (cosine of recorded embeddings)</text>",
            escape(&self.challenge_id)
        );
        let top = margin + 20;
        for (index, label) in self.labels.iter().enumerate() {
            let offset = index as u32 * SVG_CELL_PIXELS + SVG_CELL_PIXELS / 2;
            let _ = writeln!(
                svg,
                "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
                margin - 6,
                top + offset + 4,
                escape(label)
            );
            let _ = writeln!(
                svg,
                "<text x=\"{}\" y=\"{}\" text-anchor=\"start\" transform=\"rotate(-60 {} {})\">{}</text>",
                margin + offset,
                top - 6,
                margin + offset,
                top - 6,
                escape(label)
            );
        }
        for (row, values) in self.cosines.iter().enumerate() {
            for (column, cosine) in values.iter().enumerate() {
                let [r, g, b] = colour(*cosine);
                let x = margin + column as u32 * SVG_CELL_PIXELS;
                let y = top + row as u32 * SVG_CELL_PIXELS;
                let text = if *cosine > 0.6 { "black" } else { "white" };
                let _ = writeln!(
                    svg,
                    "<rect x=\"{x}\" y=\"{y}\" width=\"{SVG_CELL_PIXELS}\" height=\"{SVG_CELL_PIXELS}\" \
                     fill=\"rgb({r},{g},{b})\"/><text x=\"{}\" y=\"{}\" text-anchor=\"middle\" \
                     fill=\"{text}\">{cosine:.2}</text>",
                    x + SVG_CELL_PIXELS / 2,
                    y + SVG_CELL_PIXELS / 2 + 4
                );
            }
        }
        svg.push_str("</svg>\n");
        svg
    }

    pub fn to_png(&self) -> Vec<u8> {
        let cells = self.labels.len() as u32;
        let side = cells * PNG_CELL_PIXELS;
        let mut pixels = vec![0u8; (side * side * 3) as usize];
        for y in 0..side {
            for x in 0..side {
                let cosine =
                    self.cosines[(y / PNG_CELL_PIXELS) as usize][(x / PNG_CELL_PIXELS) as usize];
                let offset = ((y * side + x) * 3) as usize;
                pixels[offset..offset + 3].copy_from_slice(&colour(cosine));
            }
        }
        let mut out = Vec::new();
        {
            let mut encoder = png::Encoder::new(&mut out, side, side);
            encoder.set_color(png::ColorType::Rgb);
            encoder.set_depth(png::BitDepth::Eight);
            // Writing into a Vec cannot fail, and the header matches the data.
            let mut writer = encoder.write_header().expect("PNG header into memory");
            writer
                .write_image_data(&pixels)
                .expect("PNG data of the declared size into memory");
        }
        out
    }

    /// Writes the picture in the format the file name asks for.
    pub fn write(&self, path: &Path) -> Result<(), HeatmapError> {
        let name = path.display().to_string();
        let bytes = match path.extension().and_then(|extension| extension.to_str()) {
            Some("svg") => self.to_svg().into_bytes(),
            Some("png") => self.to_png(),
            _ => return Err(HeatmapError::Format { path: name }),
        };
        std::fs::write(path, bytes).map_err(|source| HeatmapError::Io { path: name, source })
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ramp_runs_dark_to_bright_and_clamps() {
        assert_eq!(colour(0.0), [68, 1, 84]);
        assert_eq!(colour(1.0), [253, 231, 37]);
        assert_eq!(colour(-0.5), colour(0.0));
        assert_eq!(colour(2.0), colour(1.0));
    }

    #[test]
    fn pictures_have_one_cell_per_pair() {
        let heatmap = Heatmap {
            challenge_id: "c<1>".into(),
            labels: vec!["prompt".into(), "uid 3".into()],
            cosines: vec![vec![1.0, 0.5], vec![0.5, 1.0]],
        };
        let svg = heatmap.to_svg();
        assert_eq!(svg.matches("<rect").count(), 4);
        assert!(svg.contains("c&lt;1&gt;"));
        assert!(svg.contains(">0.50<"));
        let png = heatmap.to_png();
        let decoder = png::Decoder::new(std::io::Cursor::new(png));
        let reader = decoder.read_info().unwrap();
        assert_eq!(reader.info().width, 2 * PNG_CELL_PIXELS);
    }
}
