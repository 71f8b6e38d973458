"""TensorFlow formats: SavedModel protobufs, checkpoint indexes, fingerprints and TFLite flatbuffers."""
