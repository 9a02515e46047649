//! The PNG backend: plotters' bitmap backend with text drawn right.
use ab_glyph::{Font as _, FontRef, ScaleFont as _};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingErrorKind,
};

/// plotters' bitmap backend with its own text rendering: plotters 0.3.7's `ab_glyph` path puts
/// every glyph's ink at the pen position, dropping the side bearings, so letters sit unevenly
/// ("ma jority"); here each outline goes where the font places it.
pub(super) struct Bitmap<'a> {
    inner: BitMapBackend<'a>,
    /// The one font registered (see [`super::register_font`]), so every text style resolves to it.
    font: FontRef<'static>,
}

impl<'a> Bitmap<'a> {
    pub(super) fn new(rgb: &'a mut [u8], size: (u32, u32)) -> Self {
        Bitmap {
            inner: BitMapBackend::with_buffer(rgb, size),
            font: FontRef::try_from_slice(ttf_noto_sans::REGULAR).expect("the bundled font parses"),
        }
    }
}

impl DrawingBackend for Bitmap<'_> {
    type ErrorType = <BitMapBackend<'static> as DrawingBackend>::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.inner.get_size()
    }

    fn ensure_prepared(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.ensure_prepared()
    }

    fn present(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.present()
    }

    fn draw_pixel(
        &mut self,
        point: BackendCoord,
        color: BackendColor,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_pixel(point, color)
    }

    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_line(from, to, style)
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_rect(upper_left, bottom_right, style, fill)
    }

    /// As plotters' default (same layout box, anchor and rotation, baseline half a font size
    /// below the box top), with each glyph at its pen position plus its own bearing.
    fn draw_text<S: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &S,
        pos: BackendCoord,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        let color = style.color();
        let ((min_x, min_y), (max_x, max_y)) = style
            .layout_box(text)
            .map_err(|e| DrawingErrorKind::FontError(Box::new(e)))?;
        let dx = match style.anchor().h_pos {
            HPos::Left => 0,
            HPos::Right => min_x - max_x,
            HPos::Center => (min_x - max_x) / 2,
        } - min_x;
        let dy = match style.anchor().v_pos {
            VPos::Top => 0,
            VPos::Center => (min_y - max_y) / 2,
            VPos::Bottom => min_y - max_y,
        } - min_y;
        let transform = style.transform();
        let font = self.font.as_scaled(style.size() as f32);
        let baseline = style.size() as f32 / 2.0;
        let mut caret = 0.0;
        let mut prev = None;
        for c in text.chars() {
            let id = font.glyph_id(c);
            if let Some(prev) = prev {
                caret += font.kern(prev, id);
            }
            prev = Some(id);
            let glyph = id.with_scale_and_position(font.scale(), ab_glyph::point(caret, baseline));
            caret += font.h_advance(id);
            let Some(outline) = font.outline_glyph(glyph) else {
                continue; // a space
            };
            let origin = outline.px_bounds().min;
            let mut drawn = Ok(());
            outline.draw(|x, y, coverage| {
                let (x, y) = transform.transform(
                    origin.x as i32 + x as i32 + dx,
                    origin.y as i32 + y as i32 + dy,
                );
                if drawn.is_ok() {
                    drawn = self
                        .inner
                        .draw_pixel((pos.0 + x, pos.1 + y), color.mix(f64::from(coverage)));
                }
            });
            drawn?;
        }
        Ok(())
    }
}
