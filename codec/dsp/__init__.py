"""Signal processing: the mel front-end, windowed chunking and the latent quantizer."""
