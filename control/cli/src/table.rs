//! Plain-text tables: a header row and left-aligned columns separated by two spaces.

/// Render `rows` under `header`, each column as wide as its widest cell.
pub fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (index, cell) in row.iter().enumerate() {
            if let Some(width) = widths.get_mut(index) {
                *width = (*width).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (index, cell) in row.iter().enumerate() {
            if index > 0 {
                line.push_str("  ");
            }
            let width = widths.get(index).copied().unwrap_or(0);
            line.push_str(&format!("{cell:<width$}"));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align() {
        let text = render(
            &["NAME", "SIZE"],
            &[
                vec!["a".into(), "1 GiB".into()],
                vec!["longer".into(), "4 KiB".into()],
            ],
        );
        assert_eq!(text, "NAME    SIZE\na       1 GiB\nlonger  4 KiB\n");
    }

    #[test]
    fn empty_table_has_header() {
        assert_eq!(render(&["A", "B"], &[]), "A  B\n");
    }
}
