//! End-to-end tests of the extractor and the layer (being written).
