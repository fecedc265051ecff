//! A squashfs image downloaded over HTTP into a file, its SHA-256 checked while reading.
