"""Sample inputs that may be shipped freely.

``astronaut_face.png``: the face of astronaut Eileen Collins, cropped from the NASA portrait that
scikit-image ships as ``astronaut.png`` (public domain, NASA). Used by ``classmood predict --sample``.
"""
