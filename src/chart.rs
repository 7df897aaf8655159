//! The report's chart: weekly vote counts of the last 52 weeks present, the mean and its ±20%
//! band, outlier weeks highlighted, this batch's weeks marked. Drawn with plotters into an RGB
//! buffer and encoded as PNG (mail clients show inline PNG; several block SVG). The picture has
//! no text: the numbers are in the table beside it (`to_html_table`, `to_text_table`).

use std::fmt::Write;

use plotters::prelude::*;

/// One week of the chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Week {
    pub year: i32,
    pub week: i32,
    pub votes: i64,
    /// More than 20% away from the mean (as in `outlier_weeks`).
    pub outlier: bool,
    /// This batch brought votes of this week.
    pub in_batch: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WeeklyChart {
    /// Oldest first, at most 52.
    pub weeks: Vec<Week>,
    /// The mean weekly count over every week present (the view's mean).
    pub mean: f64,
}

pub const WIDTH: u32 = 640;
pub const HEIGHT: u32 = 240;
/// The Content-ID the HTML refers to.
pub const CONTENT_ID: &str = "weekly-votes@votewatch";

/// An RGB triple, for callers that look at the picture (tests).
pub type Colour = (u8, u8, u8);
pub const NORMAL_RGB: Colour = (70, 110, 170);
pub const OUTLIER_RGB: Colour = (220, 90, 40);

/// Bar colours: a normal week, an outlier, and the batch marker.
pub const NORMAL: RGBColor = RGBColor(NORMAL_RGB.0, NORMAL_RGB.1, NORMAL_RGB.2);
pub const OUTLIER: RGBColor = RGBColor(OUTLIER_RGB.0, OUTLIER_RGB.1, OUTLIER_RGB.2);
const MARK: RGBColor = RGBColor(20, 20, 20);
const BAND: RGBColor = RGBColor(215, 230, 215);
const MEAN: RGBColor = RGBColor(40, 120, 40);

impl WeeklyChart {
    /// The chart as PNG bytes (`WIDTH` × `HEIGHT`, RGB).
    pub fn png(&self) -> Vec<u8> {
        let mut buf = vec![255u8; (WIDTH * HEIGHT * 3) as usize];
        self.draw(&mut buf);
        let mut out = Vec::new();
        let mut enc = png::Encoder::new(&mut out, WIDTH, HEIGHT);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        // Writing into a Vec cannot fail.
        if let Ok(mut w) = enc.write_header() {
            let _ = w.write_image_data(&buf);
        }
        out
    }

    fn draw(&self, buf: &mut [u8]) {
        let root = BitMapBackend::with_buffer(buf, (WIDTH, HEIGHT)).into_drawing_area();
        let _ = root.fill(&WHITE);
        let (left, right, top, bottom) = (8i32, WIDTH as i32 - 8, 8i32, HEIGHT as i32 - 14);
        let max = self
            .weeks
            .iter()
            .map(|w| w.votes as f64)
            .fold(self.mean * 1.2, f64::max)
            .max(1.0)
            * 1.05;
        let y = |v: f64| bottom - ((v / max) * (bottom - top) as f64).round() as i32;
        // The band within 20% of the mean, and the mean.
        let _ = root.draw(&Rectangle::new(
            [(left, y(self.mean * 1.2)), (right, y(self.mean * 0.8))],
            BAND.filled(),
        ));
        let n = self.weeks.len().max(1) as i32;
        let slot = (right - left) / n;
        let bar = (slot * 3 / 4).max(1);
        for (i, w) in self.weeks.iter().enumerate() {
            let x0 = left + i as i32 * slot + (slot - bar) / 2;
            let colour = if w.outlier { OUTLIER } else { NORMAL };
            let _ = root.draw(&Rectangle::new(
                [(x0, y(w.votes as f64)), (x0 + bar, bottom)],
                colour.filled(),
            ));
            if w.in_batch {
                let _ = root.draw(&Rectangle::new(
                    [(x0, bottom + 4), (x0 + bar, bottom + 10)],
                    MARK.filled(),
                ));
            }
        }
        let _ = root.draw(&PathElement::new(
            vec![(left, y(self.mean)), (right, y(self.mean))],
            MEAN.stroke_width(2),
        ));
        let _ = root.present();
    }

    /// The numbers behind the chart, for the HTML part.
    pub fn to_html_table(&self) -> String {
        let mut s = String::from(
            "<table border=\"1\" cellpadding=\"3\" style=\"border-collapse: collapse\">\n\
             <tr><th>Year</th><th>Week</th><th>Votes</th><th></th></tr>\n",
        );
        for w in &self.weeks {
            let _ = writeln!(
                s,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                w.year,
                w.week,
                w.votes,
                notes(w)
            );
        }
        let _ = writeln!(
            s,
            "</table>\n<p>Mean {:.1} votes a week; band {:.1} to {:.1}.</p>",
            self.mean,
            self.mean * 0.8,
            self.mean * 1.2
        );
        s
    }

    /// The numbers behind the chart, for the plain-text part.
    pub fn to_text_table(&self) -> String {
        let mut s = format!(
            "Weekly votes, last {} weeks (mean {:.1}; outside {:.1}..{:.1} is an outlier):\n",
            self.weeks.len(),
            self.mean,
            self.mean * 0.8,
            self.mean * 1.2
        );
        for w in &self.weeks {
            let _ = writeln!(
                s,
                "  {} week {:>2}: {:>8}  {}",
                w.year,
                w.week,
                w.votes,
                notes(w)
            );
        }
        s
    }
}

fn notes(w: &Week) -> String {
    let mut v = Vec::new();
    if w.outlier {
        v.push("outlier");
    }
    if w.in_batch {
        v.push("this batch");
    }
    v.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart() -> WeeklyChart {
        let weeks = (0..10)
            .map(|i| Week {
                year: 2022,
                week: i,
                votes: if i == 4 { 300 } else { 100 },
                outlier: i == 4,
                in_batch: i >= 8,
            })
            .collect();
        WeeklyChart { weeks, mean: 120.0 }
    }

    /// The PNG decodes, has the chart's size, and shows an outlier bar in the outlier colour
    /// and normal bars in the normal one.
    #[test]
    fn the_png_decodes_and_highlights_the_outlier_week() {
        let png_bytes = chart().png();
        let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut img = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut img).unwrap();
        assert_eq!((info.width, info.height), (WIDTH, HEIGHT));
        let px = |x: u32, y: u32| {
            let i = ((y * WIDTH + x) * 3) as usize;
            RGBColor(img[i], img[i + 1], img[i + 2])
        };
        // Week 4's bar: slot 4 of 10 between x = 8 and 632, near the bottom.
        let slot = (632 - 8) / 10;
        let x = |i: u32| 8 + i * slot + slot / 2;
        assert_eq!(px(x(4), HEIGHT - 20), OUTLIER);
        assert_eq!(px(x(1), HEIGHT - 20), NORMAL);
        let text = chart().to_text_table();
        assert!(text.contains("2022 week  4:      300  outlier"), "{text}");
        assert!(text.contains("week  9:      100  this batch"), "{text}");
    }
}
