// Placeholder until tobctl lands.
int main() { return 0; }
