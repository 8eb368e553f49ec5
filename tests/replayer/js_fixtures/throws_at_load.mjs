throw new RangeError('bad config');
