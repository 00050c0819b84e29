"""Training code for ldmz models; never imported by the codec hot path."""
