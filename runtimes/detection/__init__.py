"""The detection core every runtime shares: preprocessing, NMS, Detections, Detector (decoding goes through the
artifact's family, models.families), and the pipelined loop eval and the video stack run images through."""
