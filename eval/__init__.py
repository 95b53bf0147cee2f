"""WIDER FACE protocol evaluation of any converted model (issue: WIDER FACE evaluation). Not built yet."""
