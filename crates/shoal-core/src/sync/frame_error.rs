//! Why a frame of the sync stream was refused: the one error of framing,
//! shared by the codec (`codec.rs`) and the change layouts it decodes
//! (`layout.rs`, `grouped.rs`), which name it without naming each other.

/// Why a frame was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The length prefix announces more than the cap.
    #[error("frame of {len} bytes exceeds the cap of {cap} bytes")]
    TooLarge {
        /// Announced length.
        len: usize,
        /// The cap.
        cap: usize,
    },
    /// The payload does not decode as a message.
    #[error("undecodable frame: {0}")]
    Garbage(String),
    /// The MAC is wrong, missing, or present where none was expected.
    #[error("frame failed authentication")]
    BadMac,
}
