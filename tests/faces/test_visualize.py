import numpy as np

from poseface.faces.restorer import Restorer
from poseface.faces.visualize import pipeline_figure

from .conftest import IdentityModel


def test_pipeline_figure_has_four_labelled_panels_and_shows_the_mask(astronaut):
    restorer = Restorer(model=IdentityModel(128), device="cpu")
    result = restorer.restore_image(astronaut)
    figure = pipeline_figure(astronaut, result, restorer.template, restorer.mask)
    assert figure.dtype == np.uint8 and figure.shape == (348, 4 * 320 + 3 * 8, 3)
    mask_panel = figure[28:, 2 * 328 : 2 * 328 + 320]
    assert mask_panel[160, 160].min() >= 250 and mask_panel[5, 5].max() == 0  # white face, black corner
