//! How a size reads in every text output: binary units (`135.8 MiB`, `48.8 KiB`, `512 B`), the
//! ones `/memory` figures and container limits are given in. JSON outputs carry plain bytes and
//! never come here.

use bytesize::ByteSize;

/// `bytes` in binary units, one decimal.
///
/// ```text
/// size(142_431_562) == "135.8 MiB"
/// ```
pub fn size(bytes: u64) -> String {
    ByteSize(bytes).display().iec().to_string()
}

#[cfg(test)]
mod tests {
    use super::size;

    #[test]
    fn sizes_read_in_binary_units() {
        assert_eq!(size(142_431_562), "135.8 MiB");
        assert_eq!(size(49_989), "48.8 KiB");
        assert_eq!(size(512), "512 B");
        assert_eq!(size(0), "0 B");
        assert_eq!(size(3 << 30), "3.0 GiB");
    }
}
