//! Splices generated tables into a markdown file between `<!-- BEGIN generated:NAME -->` and
//! `<!-- END generated:NAME -->`, so the numbers in the README are the ones a command produced.

use std::path::Path;

use anyhow::{Context, bail};

pub fn splice_text(text: &str, name: &str, content: &str) -> anyhow::Result<String> {
    let begin = format!("<!-- BEGIN generated:{name} -->");
    let end = format!("<!-- END generated:{name} -->");
    let (Some(b), Some(e)) = (text.find(&begin), text.find(&end)) else {
        bail!("markers {begin} ... {end} not found");
    };
    if e < b {
        bail!("{end} comes before {begin}");
    }
    let mut out = String::with_capacity(text.len() + content.len());
    out.push_str(&text[..b + begin.len()]);
    out.push('\n');
    out.push_str(content.trim_end());
    out.push('\n');
    out.push_str(&text[e..]);
    Ok(out)
}

pub fn splice(path: &Path, name: &str, content: &str) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let out = splice_text(&text, name, content).with_context(|| format!("in {}", path.display()))?;
    std::fs::write(path, out).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_only_between_its_own_markers() {
        let text = "a\n<!-- BEGIN generated:t -->\nold\n<!-- END generated:t -->\nb\n<!-- BEGIN generated:u -->\nkeep\n<!-- END generated:u -->\n";
        let out = splice_text(text, "t", "new\n").unwrap();
        assert_eq!(
            out,
            "a\n<!-- BEGIN generated:t -->\nnew\n<!-- END generated:t -->\nb\n<!-- BEGIN generated:u -->\nkeep\n<!-- END generated:u -->\n"
        );
        assert!(splice_text(text, "missing", "x").is_err());
    }
}
