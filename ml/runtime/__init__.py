"""The worker process that runs torch, the client Blender talks to it through, and their protocol."""
