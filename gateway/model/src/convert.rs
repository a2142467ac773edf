//! Between `Message` and `message/cpim`. (Placeholder.)
