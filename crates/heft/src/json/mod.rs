//! Reading JSON dumps: the outer walk, the pull parser and the per-resource decoders.

pub(crate) mod decode;
pub(crate) mod parser;
pub(crate) mod scan;
pub(crate) mod walk;
pub(crate) mod window;
