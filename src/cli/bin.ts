// The executable's entry point (the bundle starts here). main.ts only defines, so the manual generator
// can read the command definitions without running a command.
import { main } from './main';

void main(process.argv);
