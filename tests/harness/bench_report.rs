//! What the benchmarks under `tests/bench/` write into `docs/benchmarks.md`:
//! the CPU they ran on, and their section of the file.

/// The CPU as `/proc/cpuinfo` names it, with family, model and whether it
/// has AVX-512: the name alone ("AMD EPYC") has covered machines of clearly
/// different speeds here, and tract picks other kernels with AVX-512, so
/// figures are only comparable on the same one.
pub fn cpu_model() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |key: &str| {
        info.lines().find_map(|line| {
            let (k, v) = line.split_once(':')?;
            (k.trim() == key).then(|| v.trim().to_owned())
        })
    };
    let name = field("model name").unwrap_or_else(|| "unknown CPU".to_owned());
    let avx512 =
        field("flags").is_some_and(|flags| flags.split_whitespace().any(|f| f == "avx512f"));
    let avx512 = if avx512 { "AVX-512" } else { "no AVX-512" };
    match (field("cpu family"), field("model")) {
        (Some(family), Some(model)) => format!("{name}, family {family}, model {model}, {avx512}"),
        _ => format!("{name}, {avx512}"),
    }
}

/// Replaces the section with `section`'s heading (up to the next `## `
/// heading or model-bench marker) or appends it.
pub fn replace_section(doc: &str, section: &str) -> String {
    let heading = section.lines().next().unwrap_or_default().trim_end();
    let mut out = String::new();
    let mut lines = doc.lines().peekable();
    let mut replaced = false;
    while let Some(line) = lines.next() {
        if line.trim_end() == heading && !replaced {
            while lines
                .peek()
                .is_some_and(|next| !next.starts_with("## ") && !next.starts_with("<!--"))
            {
                lines.next();
            }
            out.push_str(section);
            out.push('\n');
            replaced = true;
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    if !replaced {
        if !out.ends_with("\n\n") {
            out.push('\n');
        }
        out.push_str(section);
    }
    out
}

/// Writes `section` into the file at `path` (created if missing).
pub fn write_section(path: &str, section: &str) -> std::io::Result<()> {
    let old = std::fs::read_to_string(path).unwrap_or_else(|_| "# Benchmarks\n".to_owned());
    std::fs::write(path, replace_section(&old, section))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_section_is_replaced_in_place_or_appended() {
        let doc = "# B\n\n## One\n\nold\n\n## Two\n\nkept\n";
        let replaced = replace_section(doc, "## One\n\nnew\n");
        assert_eq!(replaced, "# B\n\n## One\n\nnew\n\n## Two\n\nkept\n");
        let appended = replace_section(doc, "## Three\n\nmore\n");
        assert!(
            appended.ends_with("kept\n\n## Three\n\nmore\n"),
            "{appended}"
        );
    }
}
