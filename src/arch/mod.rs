//! (placeholder: the arch layer is being written)
