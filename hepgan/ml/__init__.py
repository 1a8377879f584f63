"""Training: the dataset, the conditional GAN, training, ONNX export and calibration (TensorFlow lives here)."""
