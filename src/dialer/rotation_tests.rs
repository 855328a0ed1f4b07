//! Rotation through the claim on a real SQLite file.
