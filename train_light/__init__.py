"""Training SCRFD-0.5G, Ultra-Light slim and RFB on WIDER-format data. Not built yet."""
