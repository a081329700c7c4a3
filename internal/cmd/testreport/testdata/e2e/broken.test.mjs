// A test file that does not load: the reporter names it "(loading the file)".
import 'no-such-module-anywhere';
