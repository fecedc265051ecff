//! A squashfs image file attached read-only to a loop device and mounted as the lower.
