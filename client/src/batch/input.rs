//! Reading a batch's input: JSONL or CSV rows, streamed one at a time.
//!
//! JSONL: one object per line, `{"id": ..., "image": "path", "text": "..."}`
//! or `"texts": [...]`, optionally with `"premise": "..."`. CSV: a header
//! naming `id`, `image` and `text`, and optionally `premise` (other columns
//! are ignored; an empty premise cell is no premise). Image paths are relative to the input file's
//! directory. The reader yields one [`Row`] at a time and never reads an image:
//! 100,000 rows cost the memory of one row. A row that cannot be understood is
//! yielded as a [`Row`] with a `problem`, so that it gets a result line saying
//! why instead of stopping the run.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde_json::Value;

/// One row of the input.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The row's `id` (a number is written as text); the row number (from 1)
    /// when it has none.
    pub id: String,
    /// The image path as written in the input.
    pub image: String,
    /// The image path to read (relative paths resolved against the input's
    /// directory).
    pub image_path: PathBuf,
    pub texts: Vec<String>,
    /// The text that holds with the image, sent as the job's `premise`.
    pub premise: Option<String>,
    /// Why the row cannot be submitted, if it cannot.
    pub problem: Option<String>,
}

/// The input's format, from its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jsonl,
    Csv,
}

impl Format {
    pub fn of(path: &Path) -> anyhow::Result<Format> {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("jsonl" | "ndjson" | "json") => Ok(Format::Jsonl),
            Some("csv") => Ok(Format::Csv),
            _ => bail!(
                "{}: name the input *.jsonl or *.csv so its format is known",
                path.display()
            ),
        }
    }
}

/// Opens the input; iterate it for its rows.
pub fn open(path: &Path) -> anyhow::Result<Rows> {
    let format = Format::of(path)?;
    let file = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let base = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let source = match format {
        Format::Jsonl => Source::Jsonl(BufReader::new(file).lines()),
        Format::Csv => {
            let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(file);
            let headers = reader
                .headers()
                .with_context(|| format!("{}: no CSV header", path.display()))?
                .clone();
            let column = |name: &str| headers.iter().position(|h| h.trim() == name);
            let (Some(image), Some(text)) = (column("image"), column("text")) else {
                bail!(
                    "{}: the CSV header must name the columns id, image and text (it has: {})",
                    path.display(),
                    headers.iter().collect::<Vec<_>>().join(",")
                );
            };
            Source::Csv {
                records: reader.into_records(),
                id: column("id"),
                image,
                text,
                premise: column("premise"),
            }
        }
    };
    Ok(Rows {
        source,
        base,
        number: 0,
    })
}

/// The rows of an input, in order.
pub struct Rows {
    source: Source,
    base: PathBuf,
    number: usize,
}

enum Source {
    Jsonl(std::io::Lines<BufReader<File>>),
    Csv {
        records: csv::StringRecordsIntoIter<File>,
        id: Option<usize>,
        image: usize,
        text: usize,
        premise: Option<usize>,
    },
}

impl Iterator for Rows {
    type Item = Row;

    fn next(&mut self) -> Option<Row> {
        loop {
            self.number += 1;
            let number = self.number;
            let row = match &mut self.source {
                Source::Jsonl(lines) => {
                    let line = match lines.next()? {
                        Ok(line) => line,
                        Err(err) => {
                            return Some(self.broken(number, format!("cannot read line: {err}")));
                        }
                    };
                    if line.trim().is_empty() {
                        continue;
                    }
                    self.json_row(number, &line)
                }
                Source::Csv {
                    records,
                    id,
                    image,
                    text,
                    premise,
                } => match records.next()? {
                    Ok(record) => {
                        let field = |i: usize| record.get(i).unwrap_or("").to_owned();
                        let id = id
                            .map(field)
                            .filter(|id| !id.is_empty())
                            .unwrap_or_else(|| number.to_string());
                        let text = field(*text);
                        let texts = if text.trim().is_empty() {
                            Vec::new()
                        } else {
                            vec![text]
                        };
                        let image = field(*image);
                        let premise = premise.map(field).filter(|p| !p.trim().is_empty());
                        row(&self.base, id, image, texts, premise)
                    }
                    Err(err) => self.broken(number, format!("not a CSV record: {err}")),
                },
            };
            return Some(row);
        }
    }
}

impl Rows {
    fn json_row(&self, number: usize, line: &str) -> Row {
        let value: Value = match serde_json::from_str(line) {
            Ok(Value::Object(map)) => Value::Object(map),
            Ok(_) => return self.broken(number, "not a JSON object".into()),
            Err(err) => return self.broken(number, format!("not JSON: {err}")),
        };
        let id = match &value["id"] {
            Value::String(s) if !s.is_empty() => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => number.to_string(),
        };
        let image = value["image"].as_str().unwrap_or("").to_owned();
        let mut texts: Vec<String> = Vec::new();
        if let Some(text) = value["text"].as_str() {
            texts.push(text.to_owned());
        }
        if let Some(list) = value["texts"].as_array() {
            texts.extend(list.iter().filter_map(|t| t.as_str().map(str::to_owned)));
        }
        // Absent or null: no premise. Anything but a string is a mistake; an
        // empty string is sent as is, for the api to refuse (`premise_empty`).
        let premise = value["premise"].as_str().map(str::to_owned);
        let mut row = row(&self.base, id, image, texts, premise);
        if row.problem.is_none()
            && value["texts"]
                .as_array()
                .is_some_and(|l| l.iter().any(|t| !t.is_string()))
        {
            row.problem = Some("\"texts\" must be a list of strings".into());
        }
        if row.problem.is_none() && !matches!(value["premise"], Value::Null | Value::String(_)) {
            row.problem = Some("\"premise\" must be a string".into());
        }
        row
    }

    fn broken(&self, number: usize, problem: String) -> Row {
        Row {
            id: number.to_string(),
            image: String::new(),
            image_path: PathBuf::new(),
            texts: Vec::new(),
            premise: None,
            problem: Some(format!("row {number}: {problem}")),
        }
    }
}

/// A row, with the problem that keeps it from being submitted, if any.
fn row(base: &Path, id: String, image: String, texts: Vec<String>, premise: Option<String>) -> Row {
    let problem = if image.trim().is_empty() {
        Some("the row names no image".to_owned())
    } else if texts.is_empty() {
        Some("the row has no text".to_owned())
    } else {
        None
    };
    Row {
        id,
        image_path: base.join(&image),
        image,
        texts,
        premise,
        problem,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_jsonl_with_text_or_texts_and_reports_bad_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.jsonl");
        std::fs::write(
            &path,
            "{\"id\": \"a\", \"image\": \"img/cup.png\", \"text\": \"A cup.\"}\n\n\
             {\"id\": 7, \"image\": \"/abs.png\", \"texts\": [\"One.\", \"Two.\"]}\n\
             not json\n{\"image\": \"x.png\"}\n",
        )
        .unwrap();
        let rows: Vec<Row> = open(&path).unwrap().collect();
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[0].id, "a");
        assert_eq!(rows[0].image_path, dir.path().join("img/cup.png"));
        assert_eq!(rows[0].texts, vec!["A cup."]);
        assert_eq!(rows[1].id, "7");
        assert_eq!(rows[1].image_path, PathBuf::from("/abs.png"));
        assert_eq!(rows[1].texts, vec!["One.", "Two."]);
        assert!(rows[2].problem.as_deref().unwrap().contains("not JSON"));
        assert_eq!(rows[3].id, "5");
        assert_eq!(rows[3].problem.as_deref(), Some("the row has no text"));
        assert!(rows.iter().all(|r| r.premise.is_none()));
    }

    #[test]
    fn reads_an_optional_premise_from_jsonl() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.jsonl");
        std::fs::write(
            &path,
            "{\"id\": \"p\", \"image\": \"cup.png\", \"text\": \"It is hot.\", \"premise\": \"Steam rises.\"}\n\
             {\"id\": \"n\", \"image\": \"cup.png\", \"text\": \"It is hot.\", \"premise\": null}\n\
             {\"id\": \"e\", \"image\": \"cup.png\", \"text\": \"It is hot.\", \"premise\": \"\"}\n\
             {\"id\": \"x\", \"image\": \"cup.png\", \"text\": \"It is hot.\", \"premise\": [\"Steam.\"]}\n",
        )
        .unwrap();
        let rows: Vec<Row> = open(&path).unwrap().collect();
        assert_eq!(rows[0].premise.as_deref(), Some("Steam rises."));
        assert_eq!(rows[0].problem, None);
        assert_eq!(rows[1].premise, None);
        assert_eq!(rows[1].problem, None);
        assert_eq!(
            rows[2].premise.as_deref(),
            Some(""),
            "left to the api to refuse"
        );
        assert_eq!(
            rows[3].problem.as_deref(),
            Some("\"premise\" must be a string")
        );
    }

    #[test]
    fn reads_a_premise_column_when_the_csv_header_has_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.csv");
        std::fs::write(
            &path,
            "id,image,text,premise\nr1,cup.png,It is hot.,\"Steam rises, thick.\"\nr2,cup.png,It is hot., \n",
        )
        .unwrap();
        let rows: Vec<Row> = open(&path).unwrap().collect();
        assert_eq!(rows[0].premise.as_deref(), Some("Steam rises, thick."));
        assert_eq!(rows[1].premise, None, "an empty cell is no premise");
        assert_eq!(rows[1].problem, None);
    }

    #[test]
    fn reads_csv_by_header() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.csv");
        std::fs::write(
            &path,
            "text,id,image,extra\n\"A cup, white.\",r1,cup.png,x\n\"\",r2,cup.png,y\n",
        )
        .unwrap();
        let rows: Vec<Row> = open(&path).unwrap().collect();
        assert_eq!(rows[0].id, "r1");
        assert_eq!(rows[0].texts, vec!["A cup, white."]);
        assert_eq!(rows[0].image_path, dir.path().join("cup.png"));
        assert_eq!(rows[1].problem.as_deref(), Some("the row has no text"));
        std::fs::write(&path, "name,picture\nx,y\n").unwrap();
        assert!(open(&path).is_err());
    }
}
